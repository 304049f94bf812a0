"""Building a client: kubeconfig or the pod's service account, and clear errors when neither works."""

from __future__ import annotations

from pathlib import Path

import pytest

from libs.kube import KubeClient, KubeConfigError


def service_account(tmp_path: Path) -> tuple[Path, Path]:
    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("sa-token")
    ca.write_text("-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n")
    return token, ca


def test_in_cluster_reads_the_service_host_and_token(tmp_path: Path) -> None:
    token, ca = service_account(tmp_path)
    environ = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    kube = KubeClient.in_cluster(environ=environ, token_path=token, ca_path=ca)
    try:
        assert kube.host == "https://10.96.0.1:443"
        assert kube.api_client.configuration.api_key["BearerToken"] == "bearer sa-token"
    finally:
        kube.close()


def test_outside_a_cluster_in_cluster_config_is_a_config_error(tmp_path: Path) -> None:
    token, ca = service_account(tmp_path)
    with pytest.raises(KubeConfigError, match="Service host/port is not set"):
        KubeClient.in_cluster(environ={}, token_path=token, ca_path=ca)


def test_connect_prefers_the_kubeconfig(tmp_path: Path) -> None:
    with pytest.raises(KubeConfigError, match=str(tmp_path / "missing")):
        KubeClient.connect(tmp_path / "missing", environ={})


def test_a_kubeconfig_without_the_context_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\ncurrent-context: nope\n")
    with pytest.raises(KubeConfigError):
        KubeClient.from_kubeconfig(path)
