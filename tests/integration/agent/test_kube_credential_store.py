"""The agent's Kubernetes credential store against the fake API server, through the real
`kubernetes` client: Secrets of the gateway's namespace are listed, watched, decoded and
read with Istio's key names; other namespaces are never seen."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from libs.kube import KubeClient, WatchSettings
from libs.runtime import Backoff
from services.agent.credentials import Credential
from services.agent.credentials_kube import KubeCredentialStore
from services.agent.errors import CredentialNotFound, InvalidCredential
from tests.harness.kube_apiserver import FakeKubeApiServer

pytestmark = pytest.mark.integration

NAMESPACE = "istio-system"
FAST = WatchSettings(watch_timeout_s=300, read_grace_s=5.0,
                     backoff=Backoff(initial_s=0.01, maximum_s=0.05, reset_after_s=60.0))


def secret(name: str, namespace: str = NAMESPACE, **data: bytes) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": namespace},
            "data": {k.replace("_", "."): base64.b64encode(v).decode() for k, v in data.items()}}


class Changes:
    """What the store reported changed, and a way to wait for the next report."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._event = asyncio.Event()

    def __call__(self, namespace: str, name: str) -> None:
        self.seen.append(f"{namespace}/{name}")
        self._event.set()

    async def until(self, check: Callable[[], object], *, what: str) -> None:
        """Wait (at most 10 s) for reports until `check` holds: the store tells, nobody sleeps."""
        try:
            async with asyncio.timeout(10):
                while not check():
                    self._event.clear()
                    await self._event.wait()
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}; changes seen: {self.seen}") from None


@pytest.fixture
def api() -> Iterator[FakeKubeApiServer]:
    with FakeKubeApiServer() as server:
        yield server


@pytest.fixture
def kubectl(api: FakeKubeApiServer, tmp_path: Path) -> Iterator[client.CoreV1Api]:
    plain = client.ApiClient(client.Configuration(host=api.url, api_key={"authorization": f"Bearer {api.token}"}))
    try:
        yield client.CoreV1Api(plain)
    finally:
        plain.close()


@pytest.fixture
async def store(api: FakeKubeApiServer, tmp_path: Path) -> AsyncIterator[tuple[KubeCredentialStore, Changes]]:
    kube = KubeClient.from_kubeconfig(api.write_kubeconfig(tmp_path / "kubeconfig"), request_timeout_s=5.0)
    store = KubeCredentialStore(kube, NAMESPACE, settings=FAST)
    changes = Changes()
    store.subscribe(changes)
    task = asyncio.create_task(store.run(), name="kube-credential-store")
    try:
        yield store, changes
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        kube.close()


async def test_secrets_of_the_namespace_are_listed_watched_and_read(
        api: FakeKubeApiServer, kubectl: client.CoreV1Api, store: tuple[KubeCredentialStore, Changes]) -> None:
    credentials, changes = store
    with pytest.raises(CredentialNotFound, match="the first list of Kubernetes secrets of namespace istio-system"):
        credentials.get(NAMESPACE, "web")
    api.create(secret("web", tls_crt=b"CERT-1", tls_key=b"KEY-1", ca_crt=b"CA-1"))
    api.create(secret("elsewhere", "default", tls_crt=b"C", tls_key=b"K"))
    # The first list may be answered before or after these secrets exist (it runs in a
    # thread): either way the store holds them once it has synced and seen the watch.
    await changes.until(lambda: credentials.synced and not _missing(credentials, "web"), what="the first list")
    assert credentials.get(NAMESPACE, "web") == Credential(b"CERT-1", b"KEY-1", b"CA-1")
    assert credentials.get_ca(NAMESPACE, "web-cacert") == b"CA-1"
    assert changes.seen[0] == f"{NAMESPACE}/"
    with pytest.raises(CredentialNotFound, match="only the secrets of namespace istio-system are watched"):
        credentials.get("default", "elsewhere")

    # kubectl edits it: the watch brings the new data, and says which secret changed.
    current = kubectl.read_namespaced_secret("web", NAMESPACE)
    current.data = {"cert": base64.b64encode(b"CERT-2").decode(), "key": base64.b64encode(b"KEY-2").decode()}
    kubectl.replace_namespaced_secret("web", NAMESPACE, current)
    await changes.until(lambda: credentials.get(NAMESPACE, "web").cert_chain_pem == b"CERT-2", what="the edit")
    assert changes.seen[-1] == f"{NAMESPACE}/web"
    with pytest.raises(InvalidCredential, match=re.escape("expected keys cacert or ca.crt; found: cert, key")):
        credentials.get_ca(NAMESPACE, "web-cacert")
    kubectl.create_namespaced_secret(NAMESPACE, client.V1Secret(
        api_version="v1", kind="Secret", metadata=client.V1ObjectMeta(name="web-cacert"),
        data={"cacert": base64.b64encode(b"CA-2").decode()}))
    await changes.until(lambda: changes.seen[-1] == f"{NAMESPACE}/web-cacert", what="the -cacert secret")
    assert credentials.get_ca(NAMESPACE, "web-cacert") == b"CA-2"

    kubectl.delete_namespaced_secret("web", NAMESPACE)
    await changes.until(lambda: changes.seen[-1] == f"{NAMESPACE}/web", what="the deletion")
    with pytest.raises(CredentialNotFound, match="not found in Kubernetes secrets of namespace istio-system"):
        credentials.get(NAMESPACE, "web")
    assert all(r.path.startswith(f"/api/v1/namespaces/{NAMESPACE}/") for r in api.requests
               if r.path.endswith("/secrets") and r.query.get("watch"))


async def test_a_secret_deleted_while_the_watch_was_away_is_forgotten(
        api: FakeKubeApiServer, store: tuple[KubeCredentialStore, Changes]) -> None:
    credentials, changes = store
    api.create(secret("web", tls_crt=b"C", tls_key=b"K"))
    await changes.until(lambda: credentials.synced, what="the first list")
    with api.hold_watches(abrupt=True):
        api.store.delete(api.store.types[("", "secrets")], (NAMESPACE, "web"))
        api.expire_history()
    await changes.until(lambda: _missing(credentials, "web"), what="the relist to notice the deletion")


def _missing(store: KubeCredentialStore, name: str) -> bool:
    try:
        store.get(NAMESPACE, name)
    except CredentialNotFound:
        return True
    return False
