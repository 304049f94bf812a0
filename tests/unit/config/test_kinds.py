"""The kind registry: which kinds, in which API versions, and how mizzenctl names them."""

from __future__ import annotations

import pytest

from libs.config import kind_by_name, lookup, parse_text, supported_kinds
from tests.unit.config.cases import document, parse

NETWORKING = ("VirtualService", "DestinationRule", "Gateway", "ServiceEntry", "Sidecar", "WorkloadEntry",
              "WorkloadGroup")
SECURITY = ("AuthorizationPolicy", "PeerAuthentication", "RequestAuthentication")
TELEMETRY = ("Telemetry",)
# Mixer's policy kinds (Istio 1.0/1.1), lower-case as Istio's CRDs name them.
MIXER = ("rule", "handler", "instance", "denier", "listchecker", "memquota", "redisquota", "checknothing",
         "listentry", "quota", "QuotaSpec", "QuotaSpecBinding")
# The `istio` ConfigMap's mesh config, held as its own kind.
# From ConfigMaps: the mesh config, and envoyproxy/ratelimit's `ratelimit-config`.
MESH = ("MeshConfig", "RateLimitConfig")


def test_the_supported_kinds() -> None:
    assert {info.kind for info in supported_kinds()} == set(NETWORKING + SECURITY + TELEMETRY + MIXER + MESH)


@pytest.mark.parametrize("kind", MIXER)
def test_mixer_kinds_are_v1alpha2_only(kind: str) -> None:
    assert lookup("config.istio.io/v1alpha2", kind) is not None
    assert lookup("config.istio.io/v1alpha1", kind) is None
    assert lookup("config.istio.io/v1", kind) is None


@pytest.mark.parametrize("kind", NETWORKING)
@pytest.mark.parametrize("version", ["v1alpha3", "v1beta1", "v1"])
def test_networking_kinds_in_every_version(kind: str, version: str) -> None:
    assert lookup(f"networking.istio.io/{version}", kind) is not None


@pytest.mark.parametrize("kind", SECURITY)
def test_security_kinds_are_v1beta1_and_v1_only(kind: str) -> None:
    assert lookup("security.istio.io/v1beta1", kind) is not None
    assert lookup("security.istio.io/v1", kind) is not None
    assert lookup("security.istio.io/v1alpha1", kind) is None
    assert lookup("networking.istio.io/v1", kind) is None


@pytest.mark.parametrize("kind", TELEMETRY)
def test_telemetry_is_v1alpha1_and_v1_only(kind: str) -> None:
    assert lookup("telemetry.istio.io/v1alpha1", kind) is not None
    assert lookup("telemetry.istio.io/v1", kind) is not None
    assert lookup("telemetry.istio.io/v1beta1", kind) is None
    assert lookup("security.istio.io/v1", kind) is None


@pytest.mark.parametrize(("api_version", "kind"), [
    ("networking.istio.io/v1alpha3", "EnvoyFilter"),
    ("extensions.istio.io/v1alpha1", "WasmPlugin"),
    ("telemetry.istio.io/v1beta1", "Telemetry"),
    ("networking.istio.io/v1beta1", "ProxyConfig"),
    ("v1", "Service"),
    ("networking.istio.io/v2", "VirtualService"),
    ("config.istio.io/v1alpha2", "prometheus"),
    ("config.istio.io/v1alpha2", "attributemanifest"),
])
def test_other_kinds_are_unsupported_not_invalid(api_version: str, kind: str) -> None:
    result = parse("VirtualService", "{hosts: [a]}", api_version=api_version) if kind == "VirtualService" else \
        parse_text(f"apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: x}}\nspec: {{anything: 1}}\n", "x")
    assert result.ok and not result.resources
    assert [(e.api_version, e.kind) for e in result.unsupported] == [(api_version, kind)]


@pytest.mark.parametrize(("name", "kind"), [
    ("vs", "VirtualService"), ("virtualservices", "VirtualService"), ("virtualservice", "VirtualService"),
    ("dr", "DestinationRule"), ("gw", "Gateway"), ("se", "ServiceEntry"), ("sidecar", "Sidecar"),
    ("we", "WorkloadEntry"), ("wg", "WorkloadGroup"), ("ap", "AuthorizationPolicy"),
    ("authorizationpolicies", "AuthorizationPolicy"), ("pa", "PeerAuthentication"), ("ra", "RequestAuthentication"),
    ("telemetry", "Telemetry"), ("telemetries", "Telemetry"), ("rules", "rule"), ("handlers", "handler"),
    ("instances", "instance"), ("quotaspecs", "QuotaSpec"), ("quotaspecbindings", "QuotaSpecBinding"),
])
def test_kind_by_name(name: str, kind: str) -> None:
    info = kind_by_name(name)
    assert info is not None and info.kind == kind


def test_security_resource_round_trip() -> None:
    text = document("PeerAuthentication", "{selector: {matchLabels: {app: a}}, mtls: {mode: 2}, "
                                          "portLevelMtls: {8080: {mode: DISABLE}}}")
    (_, resource), = parse_text(text, "pa.yaml").resources
    assert resource.spec == {"selector": {"matchLabels": {"app": "a"}}, "mtls": {"mode": "PERMISSIVE"},
                             "portLevelMtls": {"8080": {"mode": "DISABLE"}}}
    assert type(resource).from_json(resource.to_json()) == resource

