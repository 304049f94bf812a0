"""The fake Kubernetes API server, a kubeconfig for it, and clients on both sides."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from libs.kube import KubeClient, WatchSettings
from libs.runtime import Backoff
from tests.harness.kube_apiserver import FakeKubeApiServer
from tests.harness.waiting import wait_until

# No waiting in tests: retries are immediate-ish, and watches stay open until the test closes them.
FAST = WatchSettings(watch_timeout_s=300, read_grace_s=5.0,
                     backoff=Backoff(initial_s=0.01, maximum_s=0.05, reset_after_s=60.0))


@pytest.fixture
def kube_api() -> Iterator[FakeKubeApiServer]:
    with FakeKubeApiServer() as api:
        yield api


@pytest.fixture
def kubeconfig(kube_api: FakeKubeApiServer, tmp_path: Path) -> Path:
    return kube_api.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def kube(kubeconfig: Path) -> Iterator[KubeClient]:
    """Mizzen's client, as a service builds it."""
    kube_client = KubeClient.from_kubeconfig(kubeconfig, request_timeout_s=5.0)
    try:
        yield kube_client
        # Closing an informer must stop its watch thread (checked while the server still runs,
        # so a thread left blocked on its socket is caught, not rescued by the server stopping).
        wait_until(lambda: not watch_threads(), timeout=5, what="watch threads to stop")
    finally:
        kube_client.close()


def watch_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("watch ")]


@pytest.fixture
def kubectl(kubeconfig: Path) -> Iterator[client.ApiClient]:
    """A separate, plain `kubernetes` client (loaded by `load_kube_config`), standing in for kubectl."""
    api = config.new_client_from_config(config_file=str(kubeconfig), persist_config=False)
    try:
        yield api
    finally:
        api.close()
