"""Mixer's policy kinds (config.istio.io/v1alpha2): Istio 1.0/1.1's own samples are accepted
unchanged and normalised like every other kind, and the kinds are named and served where
every other kind is (the registry and mizzenctl's names, galley's API and watches, the kube fake).

The samples are Istio's, shipped in samples/bookinfo/policy (its README says where they come from).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI

from libs.config import Origin, Resource, kind_by_name, lookup, parse_text, supported_kinds, warnings_of
from libs.kube import ApiGroup, ResourceRef
from services.galley.api import router
from services.galley.sources.kubernetes import KindWatch, plan_watches
from tests.harness.kube_resources import istio_types
from tests.unit.config.cases import parse

TESTDATA = Path(__file__).resolve().parents[3] / "samples" / "bookinfo" / "policy"
SAMPLES = sorted(path.name for path in TESTDATA.glob("*.yaml"))
GROUP = "config.istio.io"
API_VERSION = "config.istio.io/v1alpha2"
# kind -> plural, as Istio 1.1's CRDs (install/kubernetes/helm/istio/templates/crds.yaml) name them.
KINDS = {
    "rule": "rules", "handler": "handlers", "instance": "instances", "denier": "deniers",
    "listchecker": "listcheckers", "memquota": "memquotas", "redisquota": "redisquotas",
    "checknothing": "checknothings", "listentry": "listentries", "quota": "quotas", "QuotaSpec": "quotaspecs",
    "QuotaSpecBinding": "quotaspecbindings",
}


def load(sample: str) -> tuple[str, list[dict[str, Any]]]:
    text = (TESTDATA / sample).read_text()
    return text, [document for document in yaml.safe_load_all(text) if document]


def resources(sample: str) -> dict[tuple[str, str], Resource]:
    result = parse_text((TESTDATA / sample).read_bytes(), sample)
    assert result.errors() == [] and not result.unsupported
    return {(resource.kind, resource.name): resource for _, resource in result.resources}


# --- Istio's samples ------------------------------------------------------------------------


def test_the_samples_named_by_the_docs_are_there() -> None:
    assert {"mixer-rule-deny-label.yaml", "mixer-rule-deny-whitelist.yaml", "mixer-rule-productpage-ratelimit.yaml",
            "mixer-rule-productpage-redis-quota-rolling-window.yaml",
            "mixer-rule-productpage-redis-quota-fixed-window.yaml"} <= set(SAMPLES)
    assert (TESTDATA / "README.md").is_file()


@pytest.mark.parametrize("sample", SAMPLES)
def test_istio_samples_are_accepted_unchanged(sample: str) -> None:
    text, documents = load(sample)
    result = parse_text(text, sample)
    assert result.errors() == []
    assert not result.unsupported and not result.unreadable
    accepted = [(r.api_version, r.kind, r.name) for _, r in result.resources]
    assert accepted == [(d["apiVersion"], d["kind"], d["metadata"]["name"]) for d in documents]
    assert {kind for _, kind, _ in accepted} <= set(KINDS)
    assert [(r.ref, warnings_of(r)) for _, r in result.resources if warnings_of(r)] == []


def test_the_1_1_generic_kinds_and_the_1_0_kinds_say_the_same() -> None:
    """Istio's `-crd` samples write 1.1's handler params and instance params as 1.0's per-adapter
    and per-template specs; both normalise to the same params."""
    generic, typed = resources("mixer-rule-deny-label.yaml"), resources("mixer-rule-deny-label-crd.yaml")
    assert generic["handler", "denyreviewsv3handler"].spec["params"] == typed["denier", "denyreviewsv3handler"].spec
    assert generic["instance", "denyreviewsv3request"].spec == {"compiledTemplate": "checknothing"}
    assert typed["checknothing", "denyreviewsv3request"].spec == {}
    generic, typed = resources("mixer-rule-deny-whitelist.yaml"), resources("mixer-rule-deny-whitelist-crd.yaml")
    assert generic["handler", "whitelist"].spec["params"] == typed["listchecker", "whitelist"].spec == {
        "overrides": ["v1", "v2"], "blacklist": False}
    assert generic["instance", "appversion"].spec["params"] == typed["listentry", "appversion"].spec
    generic, typed = (resources("mixer-rule-productpage-ratelimit.yaml"),
                      resources("mixer-rule-productpage-ratelimit-crd.yaml"))
    generic_quotas = generic["handler", "quotahandler"].spec["params"]["quotas"]
    typed_quotas = typed["memquota", "handler"].spec["quotas"]
    assert [q["overrides"] for q in generic_quotas] == [q["overrides"] for q in typed_quotas]


def test_rolling_window_sample_is_normalised() -> None:
    handler = resources("mixer-rule-productpage-redis-quota-rolling-window.yaml")["handler", "redishandler"]
    assert handler.spec["params"]["quotas"][0] == {
        "name": "requestcountquota.instance.istio-system", "maxAmount": 500, "validDuration": "1s",
        "bucketDuration": "0.5s", "rateLimitAlgorithm": "ROLLING_WINDOW",
        "overrides": [{"dimensions": {"destination": "reviews"}, "maxAmount": 1},
                      {"dimensions": {"destination": "productpage", "source": "10.28.11.20"}, "maxAmount": 500},
                      {"dimensions": {"destination": "productpage"}, "maxAmount": 2}]}


def test_binding_and_spec_of_the_ratelimit_sample() -> None:
    found = resources("mixer-rule-productpage-ratelimit.yaml")
    assert found["QuotaSpec", "request-count"].spec == {"rules": [{"quotas": [{"charge": 1,
                                                                                "quota": "requestcountquota"}]}]}
    assert found["QuotaSpecBinding", "request-count"].spec == {
        "quotaSpecs": [{"name": "request-count", "namespace": "istio-system"}],
        "services": [{"name": "productpage", "namespace": "default"}]}
    # The rule has no match (the sample comments it out): it always applies.
    assert found["rule", "quota"].spec == {"actions": [{"handler": "quotahandler",
                                                        "instances": ["requestcountquota"]}]}


# --- normalisation --------------------------------------------------------------------------


def test_handler_params_are_normalised_by_their_adapters_schema() -> None:
    """snake_case names, enum numbers, int64 strings and Go durations, as Istio's JSON says."""
    result = parse("handler", """
        compiled_adapter: redisquota
        params:
          redis_server_url: redis:6379
          connection_pool_size: "20"
          quotas:
          - name: requestcountquota.instance.istio-system
            max_amount: "5"
            valid_duration: 1000ms
            bucket_duration: 250ms
            rate_limit_algorithm: 1
            overrides: [{dimensions: {destination: reviews}, max_amount: 2}]
        """, api_version=API_VERSION)
    assert result.errors() == []
    (_, resource), = result.resources
    assert resource.spec == {"compiledAdapter": "redisquota", "params": {
        "redisServerUrl": "redis:6379", "connectionPoolSize": 20,
        "quotas": [{"name": "requestcountquota.instance.istio-system", "maxAmount": 5, "validDuration": "1s",
                    "bucketDuration": "0.25s", "rateLimitAlgorithm": "ROLLING_WINDOW",
                    "overrides": [{"dimensions": {"destination": "reviews"}, "maxAmount": 2}]}]}}
    assert type(resource).from_json(resource.to_json()) == resource


def test_instance_params_and_1_0_kinds_are_normalised() -> None:
    (_, instance), = parse("instance", "{compiled_template: listentry, params: {value: source.ip}}",
                           api_version=API_VERSION).resources
    assert instance.spec == {"compiledTemplate": "listentry", "params": {"value": "source.ip"}}
    (_, denier), = parse("denier", "{status: {code: 7}, valid_duration: 1500ms, valid_use_count: 10}",
                         api_version=API_VERSION).resources
    assert denier.spec == {"status": {"code": 7}, "validDuration": "1.5s", "validUseCount": 10}


def test_out_of_process_adapter_params_are_kept_as_written() -> None:
    spec = "{adapter: my-adapter, params: {some_field: [1, two]}, connection: {address: 'oop:8080'}}"
    (_, resource), = parse("handler", spec, api_version=API_VERSION).resources
    assert resource.spec == {"adapter": "my-adapter", "params": {"some_field": [1, "two"]},
                             "connection": {"address": "oop:8080"}}


@pytest.mark.parametrize("spec", ["", "spec:\n", "spec: {}\n"])
def test_checknothing_needs_no_spec(spec: str) -> None:
    """Istio's samples write `spec:` with nothing for checknothing."""
    text = f"apiVersion: {API_VERSION}\nkind: checknothing\nmetadata: {{name: deny, namespace: istio-system}}\n{spec}"
    result = parse_text(text, "checknothing.yaml")
    assert result.errors() == []
    (_, resource), = result.resources
    assert resource.spec == {}


def test_a_sampling_block_is_kept_as_written() -> None:
    spec = "{actions: [{handler: h, instances: [i]}], sampling: {random: {percentSampled: {numerator: 5}}}}"
    (_, resource), = parse("rule", spec, api_version=API_VERSION).resources
    assert resource.spec["sampling"] == {"random": {"percentSampled": {"numerator": 5}}}


@pytest.mark.parametrize("reference", [
    "h", "h.denier", "h.handler", "h.istio-system", "h.denier.istio-system", "h.handler.istio-system",
])
def test_handler_references_of_both_istio_versions(reference: str) -> None:
    spec = f"{{actions: [{{handler: {reference}, instances: [a, b.listentry, c.instance.istio-system]}}]}}"
    assert parse("rule", spec, api_version=API_VERSION).errors() == []


def test_header_operations_with_expressions() -> None:
    spec = """
        actions: [{handler: h, instances: [i]}]
        requestHeaderOperations:
        - name: x-source-app
          values: ['source.labels["app"] | "unknown"']
        responseHeaderOperations:
        - name: x-version
          operation: REMOVE
        """
    assert parse("rule", spec, api_version=API_VERSION).errors() == []


# --- where the kinds are served ---------------------------------------------------------------


def test_the_registry_serves_every_kind_at_v1alpha2_only() -> None:
    mixer = {info.kind: info for info in supported_kinds() if info.group == GROUP}
    assert {kind: info.plural for kind, info in mixer.items()} == KINDS
    for kind in KINDS:
        assert lookup(API_VERSION, kind) is not None
        for other in ("config.istio.io/v1alpha1", "config.istio.io/v1beta1", "config.istio.io/v1",
                      "networking.istio.io/v1alpha3", "policy.istio.io/v1beta1"):
            assert lookup(other, kind) is None
        assert mixer[kind].short_names == ()


@pytest.mark.parametrize("kind", ["prometheus", "stdio", "metric", "logentry", "attributemanifest",
                                  "HTTPAPISpec", "adapter", "template", "Rule", "Handler"])
def test_mixer_kinds_mizzen_does_not_serve_are_unsupported(kind: str) -> None:
    result = parse_text(f"apiVersion: {API_VERSION}\nkind: {kind}\nmetadata: {{name: x}}\nspec: {{a: 1}}\n", "x")
    assert result.ok and not result.resources
    assert [(e.api_version, e.kind) for e in result.unsupported] == [(API_VERSION, kind)]


@pytest.mark.parametrize(("name", "kind"), [
    ("rules", "rule"), ("rule", "rule"), ("handlers", "handler"), ("instances", "instance"),
    ("deniers", "denier"), ("listcheckers", "listchecker"), ("memquotas", "memquota"),
    ("redisquotas", "redisquota"), ("checknothings", "checknothing"), ("listentries", "listentry"),
    ("listentry", "listentry"), ("quotas", "quota"), ("quotaspecs", "QuotaSpec"), ("QuotaSpec", "QuotaSpec"),
    ("quotaspecbindings", "QuotaSpecBinding"), ("quotaspecbinding", "QuotaSpecBinding"),
])
def test_kind_by_name_for_mizzenctl(name: str, kind: str) -> None:
    info = kind_by_name(name)
    assert info is not None and info.kind == kind


class _Source:
    name = "test"
    synced = True

    def __init__(self, found: list[Resource]) -> None:
        self._found = found

    def resources(self) -> dict[str, tuple[Origin, Resource]]:
        return {resource.key: (Origin("test"), resource) for resource in self._found}

    async def run(self) -> None:  # pragma: no cover - never started here
        return None


async def test_galley_lists_rules_for_mizzenctl_get_rules() -> None:
    """`mizzenctl get rules -n istio-system` asks galley for kind `rules`."""
    found = [resource for _, resource in parse_text((TESTDATA / "mixer-rule-productpage-ratelimit.yaml").read_bytes(),
                                                     "ratelimit.yaml").resources]
    app = FastAPI()
    # Only the read endpoint is used: no applied source (and no NATS bucket) is needed.
    app.include_router(router(None, [_Source(found)], token=None))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://galley") as client:
        response = await client.get("/apis/v1/resources", params={"kind": "rules", "namespace": "istio-system"})
        assert response.status_code == 200
        body = response.json()
        assert body["kind"] == "rule"
        assert [item["metadata"]["name"] for item in body["items"]] == ["quota"]
        assert body["items"][0]["apiVersion"] == API_VERSION
        response = await client.get("/apis/v1/resources", params={"kind": "quotaspecbindings"})
        assert [item["kind"] for item in response.json()["items"]] == ["QuotaSpecBinding"]


def test_galley_watches_mixer_kinds_at_v1alpha2() -> None:
    kinds = [info for info in supported_kinds() if info.group == GROUP]
    watches, missing = plan_watches(kinds, {GROUP: ApiGroup(GROUP, ("v1alpha2",), "v1alpha2")})
    assert missing == []
    assert sorted(watches, key=lambda w: w.kind) == sorted(
        (KindWatch(kind, ResourceRef(GROUP, "v1alpha2", plural), None) for kind, plural in KINDS.items()),
        key=lambda w: w.kind)


def test_the_kube_fake_serves_the_mixer_kinds() -> None:
    served = {t.kind: (t.group, t.plural, t.versions) for t in istio_types() if t.group == GROUP}
    assert served == {kind: (GROUP, plural, ("v1alpha2",)) for kind, plural in KINDS.items()}
