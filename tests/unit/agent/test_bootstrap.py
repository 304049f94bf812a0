"""The bootstrap has sds-grpc unless SDS is turned off, and merges an override file."""

from __future__ import annotations

from pathlib import Path

import pytest
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2

from services.agent.bootstrap import SDS_CLUSTER, build_bootstrap
from services.agent.errors import BootstrapOverrideError, ConfigurationError
from services.agent.sds_setup import check_settings
from services.agent.settings import AgentSettings
from tests.harness.identity import write_override


def test_sds_cluster_without_identity_unless_sds_is_off() -> None:
    # Gateways' credentials and every TLS file pilot names come over SDS, identity or not.
    assert SDS_CLUSTER in {c.name for c in build_bootstrap(AgentSettings()).static_resources.clusters}
    bootstrap = build_bootstrap(AgentSettings(sds_enabled=False))
    assert SDS_CLUSTER not in {c.name for c in bootstrap.static_resources.clusters}


def test_sds_cluster_is_http2_on_the_socket(tmp_path: Path) -> None:
    settings = AgentSettings(identity_enabled=True, state_dir=tmp_path)
    clusters = {c.name: c for c in build_bootstrap(settings).static_resources.clusters}
    sds = clusters[SDS_CLUSTER]
    address = sds.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address
    assert address.pipe.path == str(tmp_path.absolute() / "sds.sock")
    assert "envoy.extensions.upstreams.http.v3.HttpProtocolOptions" in sds.typed_extension_protocol_options


def test_override_adds_listeners(tmp_path: Path) -> None:
    override = write_override(tmp_path / "override.json", 8443)
    bootstrap = build_bootstrap(AgentSettings(identity_enabled=True, state_dir=tmp_path, bootstrap_override=override))
    assert [listener.name for listener in bootstrap.static_resources.listeners][-1] == "mtls"
    assert {"xds-grpc", SDS_CLUSTER} <= {c.name for c in bootstrap.static_resources.clusters}


@pytest.mark.parametrize(("text", "message"), [
    ("static_resources: [", "is not valid JSON or YAML"),
    ("- a list", "must hold a mapping"),
    ("static_resources: {listenerz: []}", "is not an Envoy Bootstrap"),
])
def test_bad_override_names_the_file_and_reason(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "override.yaml"
    path.write_text(text)
    with pytest.raises(BootstrapOverrideError, match=f"bootstrap override {path}: {message}"):
        build_bootstrap(AgentSettings(bootstrap_override=path))


def test_secure_xds_checks_pilots_name_against_the_mesh_roots() -> None:
    bootstrap = build_bootstrap(AgentSettings(pilot_address="istiod.istio-system.svc:15012", pilot_tls=True,
                                              identity_enabled=True))
    [xds] = [c for c in bootstrap.static_resources.clusters if c.name == "xds-grpc"]
    context = tls_pb2.UpstreamTlsContext()
    assert xds.transport_socket.typed_config.Unpack(context)
    assert context.sni == "istiod.istio-system.svc"
    validation = context.common_tls_context.combined_validation_context
    assert validation.validation_context_sds_secret_config.name == "ROOTCA"
    [san] = validation.default_validation_context.match_typed_subject_alt_names
    assert (san.san_type, san.matcher.exact) == (common_pb2.SubjectAltNameMatcher.DNS, "istiod.istio-system.svc")
    assert [s.name for s in context.common_tls_context.tls_certificate_sds_secret_configs] == ["default"]
    plain = build_bootstrap(AgentSettings())
    assert not next(c for c in plain.static_resources.clusters if c.name == "xds-grpc").HasField("transport_socket")


def test_secure_xds_needs_the_workload_identity() -> None:
    with pytest.raises(ConfigurationError, match="pilot_tls needs identity_enabled"):
        check_settings(AgentSettings(pilot_tls=True))


def test_envoy_reconnects_to_pilot_with_a_low_capped_jittered_backoff() -> None:
    bootstrap = build_bootstrap(AgentSettings(xds_retry_base_s=0.2, xds_retry_max_s=1.5))
    (service,) = bootstrap.dynamic_resources.ads_config.grpc_services
    backoff = service.envoy_grpc.retry_policy.retry_back_off
    assert (backoff.base_interval.ToMilliseconds(), backoff.max_interval.ToMilliseconds()) == (200, 1500)
    # The defaults cap a proxy's wait for a pilot that came back at a second.
    default = build_bootstrap(AgentSettings()).dynamic_resources.ads_config.grpc_services[0]
    assert default.envoy_grpc.retry_policy.retry_back_off.max_interval.ToMilliseconds() == 1000
