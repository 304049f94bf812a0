"""Which settings work together for the SDS server and its credential sources."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from services.agent.credentials_files import FileCredentialStore
from services.agent.errors import ConfigurationError
from services.agent.sds_setup import build_sds, check_settings
from services.agent.settings import AgentSettings


@pytest.mark.parametrize(("settings", "message"), [
    (AgentSettings(identity_enabled=True, sds_enabled=False), "identity_enabled needs sds_enabled"),
    (AgentSettings(credentials_dir=Path("/c"), credentials_from_kubernetes=True), "are exclusive"),
    (AgentSettings(sds_enabled=False, credentials_dir=Path("/c")), "they need sds_enabled"),
])
def test_settings_that_cannot_work_together(settings: AgentSettings, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        check_settings(settings)


async def test_gateways_get_the_credential_source_and_sidecars_do_not(tmp_path: Path) -> None:
    gateway = build_sds(AgentSettings(node_type="router", namespace="istio-system", credentials_dir=tmp_path,
                                      state_dir=tmp_path), CollectorRegistry(), {})
    assert isinstance(gateway.store, FileCredentialStore)
    assert gateway.credentials.policy.router and gateway.credentials.policy.namespace == "istio-system"
    sidecar = build_sds(AgentSettings(credentials_dir=tmp_path, state_dir=tmp_path), CollectorRegistry(), {})
    assert sidecar.store is None
    assert not sidecar.credentials.policy.router


async def test_a_bad_kubeconfig_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "kubeconfig").write_text("not: [a kubeconfig")
    with pytest.raises(ConfigurationError, match="credentials_from_kubernetes: kubeconfig"):
        build_sds(AgentSettings(node_type="router", credentials_from_kubernetes=True,
                                kubeconfig=tmp_path / "kubeconfig", state_dir=tmp_path), CollectorRegistry(), {})
