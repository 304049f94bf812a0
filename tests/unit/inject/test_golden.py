"""kube-inject's output for each fixture, compared with its reviewed golden file.

The fixtures re-express the cases of Istio's injection tests (pkg/kube/inject/testdata):
probes with named ports, traffic annotations, existing init containers, resource
annotations, skipped pods and every pod-bearing kind.  `make golden` rewrites the
`.injected` files after a deliberate change; review them in the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from libs.inject import InjectionConfig, MeshSettings
from tools.mizzenctl.kube_inject import inject_text

DATA = Path(__file__).parent / "testdata"
CASES = sorted(p.name for p in DATA.glob("*.yaml"))
REGENERATE = os.environ.get("MIZZEN_REGENERATE_GOLDEN") == "1"


def injected(name: str) -> str:
    return inject_text((DATA / name).read_text(), name, InjectionConfig(), MeshSettings(), lambda _: None)


@pytest.mark.parametrize("name", CASES)
def test_matches_golden_file(name: str) -> None:
    golden = DATA / f"{name}.injected"
    output = injected(name)
    if REGENERATE:
        golden.write_text(output)
    assert output == golden.read_text(), f"{name}: kube-inject output changed; `make golden` if intended"


@pytest.mark.parametrize("name", CASES)
def test_injecting_again_changes_nothing(name: str) -> None:
    once = injected(name)
    assert inject_text(once, name, InjectionConfig(), MeshSettings(), lambda _: None) == once


def test_skipped_documents_pass_through_byte_for_byte() -> None:
    text = (DATA / "skipped.yaml").read_text()
    documents = [d for d in text.split("\n---\n")]
    output = injected("skipped.yaml")
    for document in documents:
        assert document.strip("\n") in output
    assert [yaml.safe_load(d) for d in output.split("---\n") if d.strip()] == list(yaml.safe_load_all(text))
