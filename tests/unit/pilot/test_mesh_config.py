"""Pilot's mesh settings: its flags, overridden by the `istio` ConfigMap of the system namespace."""

from __future__ import annotations

from libs.config import MESH_CONFIG_KIND, Resource, parse_text
from services.pilot.model.mesh import MeshConfig, mesh_from_config
from tests.unit.config.test_mesh_config import ISTIO_DEFAULTS, configmap


def mesh_resources(*documents: str) -> list[Resource]:
    return [r for text in documents for _, r in parse_text(text, "mesh.yaml").resources if r.kind == MESH_CONFIG_KIND]


def test_flags_hold_until_a_mesh_config_sets_the_field() -> None:
    base = MeshConfig(root_namespace="istio-system", trust_domain="example.org", connect_timeout_s=10.0)
    mesh = mesh_from_config(mesh_resources(configmap("rootNamespace: istio-config\nconnectTimeout: 2s\n")),
                            base, "istio-system")
    assert (mesh.root_namespace, mesh.trust_domain, mesh.connect_timeout_s) == ("istio-config", "example.org", 2.0)


def test_istio_mesh_config_fields_reach_translation() -> None:
    mesh = mesh_from_config(mesh_resources(configmap(ISTIO_DEFAULTS)), MeshConfig(), "istio-system")
    assert mesh.outbound_traffic_policy == "REGISTRY_ONLY"
    assert mesh.num_trusted_proxies == 2
    assert (mesh.access_log_file, mesh.access_log_encoding, mesh.enable_tracing) == ("/dev/stdout", "JSON", True)
    opa = mesh.ext_authz_provider("opa")
    assert opa is not None and opa.grpc and (opa.host, opa.port, opa.timeout_s, opa.fail_open) == (
        "opa.opa.svc.cluster.local", 9191, 0.5, True)
    http = mesh.ext_authz_provider("sample-ext-authz-http")
    assert http is not None and not http.grpc and http.include_request_headers == ("x-ext-authz",)
    assert http.timeout_s == 600.0 and http.status_on_error == 403  # Istio's defaults
    assert mesh.ext_authz_provider("zipkin") is None


def test_only_the_system_namespace_configmap_counts() -> None:
    other = mesh_resources(configmap("rootNamespace: elsewhere\n", namespace="default"))
    assert mesh_from_config(other, MeshConfig(), "istio-system") == MeshConfig()
