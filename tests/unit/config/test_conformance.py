"""Istio's own configs must be accepted unchanged; kinds Mizzen does not serve are listed.

Test data only: the corpus of Istio's files is kept outside this repository
(`conformance_dir` in tests/conftest.py), and these tests skip when it is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from libs.config import ParseResult, parse_text, supported_kinds

FOLDERS = ("validation-dataset", "pilot-testdata", "bookinfo/networking")

# Every (file, kind) of the corpus that Mizzen reports as an unsupported kind.  The set may
# only shrink: a kind that becomes supported must leave it, and nothing may join it.
UNSUPPORTED = {
    ("pilot-testdata/none.yaml", "Deployment"),
    ("pilot-testdata/none.yaml", "Service"),
    ("validation-dataset/extensions-v1alpha1-TrafficExtension.yaml", "TrafficExtension"),
    ("validation-dataset/extensions-v1alpha1-WasmPlugin.yaml", "WasmPlugin"),
    ("validation-dataset/networking-v1alpha3-EnvoyFilter.yaml", "EnvoyFilter"),
    ("validation-dataset/networking-v1beta1-ProxyConfig.yaml", "ProxyConfig"),
}


def corpus_files(root: Path) -> list[Path]:
    return sorted(path for folder in FOLDERS for path in (root / folder).glob("*.yaml"))


def parse_corpus(root: Path) -> dict[str, ParseResult]:
    return {str(path.relative_to(root)): parse_text(path.read_bytes(), str(path.relative_to(root)))
            for path in corpus_files(root)}


@pytest.fixture(scope="module")
def corpus(conformance_dir: Path) -> dict[str, ParseResult]:
    return parse_corpus(conformance_dir)


def test_corpus_is_there(corpus: dict[str, ParseResult]) -> None:
    assert len(corpus) > 50


def test_every_supported_resource_is_accepted(corpus: dict[str, ParseResult]) -> None:
    errors = [line for result in corpus.values() for line in result.errors()]
    assert errors == []


def test_unsupported_kinds_are_exactly_the_known_ones(corpus: dict[str, ParseResult]) -> None:
    found = {(source, error.kind) for source, result in corpus.items() for error in result.unsupported}
    assert found == UNSUPPORTED


def test_validation_dataset_covers_every_kind_and_version(corpus: dict[str, ParseResult]) -> None:
    """The dataset has one resource per kind and API version Istio serves, so each of ours appears."""
    accepted = {(resource.api_version, resource.kind) for source, result in corpus.items()
                if source.startswith("validation-dataset/") for _, resource in result.resources}
    # The mesh config is a ConfigMap, not one of Istio's CRDs, and Mixer's config.istio.io kinds
    # left Istio in 1.8: today's dataset has examples of neither.
    expected = {(api_version, info.kind) for info in supported_kinds()
                if info.group and info.group != "config.istio.io"
                for api_version in info.api_versions}
    assert accepted == expected
