"""libs.kube against the fake API server, through the real `kubernetes` client over HTTP."""

from __future__ import annotations

from typing import Any, cast

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from libs.kube import (
    KubeApiError,
    KubeClient,
    KubeUnavailable,
    ResourceRef,
    ServiceAccount,
    Synced,
    TokenRejected,
    WatchEvent,
    review_token,
    watch_resources,
)
from libs.kube._events import object_key
from tests.harness.kube_apiserver import FakeKubeApiServer
from tests.integration.kube.conftest import FAST
from tests.integration.kube.helpers import Follower, eventually

pytestmark = pytest.mark.integration

NET = "networking.istio.io"
VS = ResourceRef(NET, "v1", "virtualservices")


def vs(name: str, namespace: str = "default", *, version: str = "v1", host: str = "reviews") -> dict[str, Any]:
    return {"apiVersion": f"{NET}/{version}", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"hosts": [host]}}


class Kubectl:
    """What a user does with kubectl, through the plain client."""

    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)

    def create(self, body: dict[str, Any], plural: str = "virtualservices") -> dict[str, Any]:
        group, version = body["apiVersion"].split("/")
        namespace = body["metadata"]["namespace"]
        return cast(dict[str, Any], self.custom.create_namespaced_custom_object(group, version, namespace, plural,
                                                                                 body))

    def edit(self, name: str, host: str, namespace: str = "default") -> dict[str, Any]:
        current = cast(dict[str, Any], self.custom.get_namespaced_custom_object(NET, "v1", namespace,
                                                                                 "virtualservices", name))
        current["spec"]["hosts"] = [host]  # sent back with its resourceVersion: optimistic concurrency
        return cast(dict[str, Any], self.custom.replace_namespaced_custom_object(
            NET, "v1", namespace, "virtualservices", name, current))

    def delete(self, name: str, namespace: str = "default") -> None:
        self.custom.delete_namespaced_custom_object(NET, "v1", namespace, "virtualservices", name)


@pytest.fixture
def kubectl_ops(kubectl: client.ApiClient) -> Kubectl:
    return Kubectl(kubectl)


def summary(items: list[Any]) -> list[tuple[str, str]]:
    return [(i.type, i.name) if isinstance(i, WatchEvent) else ("SYNCED", i.resource_version) for i in items]


async def test_initial_list_then_synced(kube: KubeClient, kube_api: FakeKubeApiServer, kubectl_ops: Kubectl) -> None:
    kubectl_ops.create(vs("a", "one", version="v1alpha3"))
    kubectl_ops.create(vs("b", "two"))
    kubectl_ops.create({"apiVersion": f"{NET}/v1", "kind": "DestinationRule", "metadata": {"name": "a",
                        "namespace": "one"}, "spec": {"host": "reviews"}}, plural="destinationrules")
    async with Follower(watch_resources(kube, VS, settings=FAST)) as everywhere:
        events, synced = await everywhere.until_synced()
    assert [(e.type, e.key) for e in events] == [("ADDED", ("one", "a")), ("ADDED", ("two", "b"))]
    # Created as v1alpha3, served as v1: one stored object, whichever version reads it.
    assert {e.object["apiVersion"] for e in events} == {f"{NET}/v1"}
    assert synced == Synced(str(kube_api.store.resource_version), initial=True)
    async with Follower(watch_resources(kube, VS, namespace="two", settings=FAST)) as one_namespace:
        events, _ = await one_namespace.until_synced()
    assert [e.key for e in events] == [("two", "b")]
    # Closed informers hang up, and the server lets go of their watches.
    await eventually(lambda: kube_api.open_watches() == 0, what="the watches to be released")


async def test_add_modify_delete_are_seen_in_order(kube: KubeClient, kubectl_ops: Kubectl) -> None:
    kubectl_ops.create(vs("a"))
    kubectl_ops.create(vs("b"))
    async with Follower(watch_resources(kube, VS, settings=FAST)) as informer:
        await informer.until_synced()
        kubectl_ops.create(vs("c"))
        kubectl_ops.edit("a", "ratings")
        kubectl_ops.delete("b")
        events = [await informer.next() for _ in range(3)]
    assert summary(events) == [("ADDED", "c"), ("MODIFIED", "a"), ("DELETED", "b")]
    assert events[1].object["spec"]["hosts"] == ["ratings"]  # type: ignore[union-attr]
    versions = [int(e.resource_version) for e in events]
    assert versions == sorted(versions) and len(set(versions)) == 3


async def test_bookmarks_advance_the_resume_point(kube: KubeClient, kube_api: FakeKubeApiServer,
                                                 kubectl_ops: Kubectl) -> None:
    kubectl_ops.create(vs("a"))
    async with Follower(watch_resources(kube, VS, settings=FAST)) as informer:
        _, synced = await informer.until_synced()
        await eventually(lambda: kube_api.open_watches("virtualservices") == 1, what="the watch to open")
        # A write elsewhere moves the global resourceVersion past anything this watch has seen.
        kubectl_ops.create({"apiVersion": f"{NET}/v1", "kind": "Gateway", "metadata": {"name": "g",
                            "namespace": "default"}, "spec": {"servers": []}}, plural="gateways")
        bookmark_rv = str(kube_api.store.resource_version)
        assert kube_api.send_bookmark() == 1
        kube_api.close_watches()
        resumed = await eventually(lambda: kube_api.watch_requests("virtualservices")[1:], what="a second watch")
        kubectl_ops.create(vs("marker"))
        after = await informer.until_named("marker")
    assert resumed[0].query["resourceVersion"] == bookmark_rv != synced.resource_version
    assert resumed[0].query["allowWatchBookmarks"] == "true"
    assert summary(after) == [("ADDED", "marker")]  # a bookmark is not an event
    assert len(kube_api.list_requests("virtualservices")) == 1  # resumed, not relisted


async def test_410_gone_relists_and_reports_what_changed_meanwhile(
        kube: KubeClient, kube_api: FakeKubeApiServer, kubectl_ops: Kubectl) -> None:
    for name in ("a", "b", "c"):
        kubectl_ops.create(vs(name))
    async with Follower(watch_resources(kube, VS, settings=FAST)) as informer:
        await informer.until_synced()
        with kube_api.hold_watches():
            kubectl_ops.delete("b")
            kubectl_ops.edit("a", "ratings")
            kubectl_ops.create(vs("d"))
            kube_api.expire_history()
        events, synced = await informer.until_synced()
        kubectl_ops.create(vs("marker"))
        after = await informer.until_named("marker")
    assert sorted(summary(events)) == [("ADDED", "d"), ("DELETED", "b"), ("MODIFIED", "a")]
    deleted = next(e for e in events if e.type == "DELETED")
    assert deleted.object["metadata"]["name"] == "b"  # the last state the consumer was told
    assert not synced.initial
    assert synced.resource_version == str(kube_api.store.resource_version - 1)  # before the marker
    assert len(kube_api.list_requests("virtualservices")) == 2
    assert summary(after) == [("ADDED", "marker")]


@pytest.mark.parametrize("abrupt", [False, True], ids=["stream-ended", "connection-cut"])
async def test_dropped_watches_resume_without_duplicates_or_losses(
        kube: KubeClient, kube_api: FakeKubeApiServer, kubectl_ops: Kubectl, abrupt: bool) -> None:
    kubectl_ops.create(vs("a"))
    kubectl_ops.create(vs("b"))
    async with Follower(watch_resources(kube, VS, settings=FAST)) as informer:
        await informer.until_synced()
        kubectl_ops.edit("a", "v2")
        seen = await informer.next()
        assert summary([seen]) == [("MODIFIED", "a")]
        with kube_api.hold_watches(abrupt=abrupt):
            kubectl_ops.create(vs("c"))
            kubectl_ops.edit("a", "v3")
            kubectl_ops.delete("b")
        kubectl_ops.create(vs("marker"))
        missed = await informer.until_named("marker")
    assert summary(missed) == [("ADDED", "c"), ("MODIFIED", "a"), ("DELETED", "b"), ("ADDED", "marker")]
    assert len(kube_api.list_requests("virtualservices")) == 1  # replayed from history, no relist
    # Resumed from the last event it saw before the drop, so the server replayed exactly the rest.
    resumed = kube_api.watch_requests("virtualservices")[1:]
    assert {r.query["resourceVersion"] for r in resumed} == {seen.resource_version}


async def test_a_server_side_timeout_ends_the_watch_and_it_resumes(kube: KubeClient, kube_api: FakeKubeApiServer,
                                                                 kubectl_ops: Kubectl) -> None:
    short = type(FAST)(watch_timeout_s=1, read_grace_s=5.0, backoff=FAST.backoff)
    async with Follower(watch_resources(kube, VS, settings=short)) as informer:
        await informer.until_synced()
        await eventually(lambda: len(kube_api.watch_requests("virtualservices")) >= 2, what="a re-watch")
        kubectl_ops.create(vs("late"))
        assert summary(await informer.until_named("late")) == [("ADDED", "late")]
    assert kube_api.watch_requests("virtualservices")[0].query["timeoutSeconds"] == "1"


async def test_failed_lists_and_watches_are_retried(kube: KubeClient, kube_api: FakeKubeApiServer,
                                                   kubectl_ops: Kubectl) -> None:
    kubectl_ops.create(vs("a"))
    kube_api.fail_next(2, plural="virtualservices")  # the first list, then its retry
    async with Follower(watch_resources(kube, VS, settings=FAST)) as informer:
        events, _ = await informer.until_synced()
        await eventually(lambda: kube_api.open_watches("virtualservices"), what="the watch to open")
        kube_api.fail_next(1, plural="virtualservices", code=503, reason="ServiceUnavailable")
        kube_api.close_watches()
        await eventually(lambda: not kube_api.failures_pending() and kube_api.open_watches("virtualservices"),
                         what="the re-watch to fail once and then succeed")
        kubectl_ops.create(vs("b"))
        assert summary(await informer.until_named("b")) == [("ADDED", "b")]
    assert summary(events) == [("ADDED", "a")]
    assert len(kube_api.list_requests("virtualservices")) == 3


async def test_core_resources_with_a_label_selector(kube: KubeClient, kube_api: FakeKubeApiServer) -> None:
    def pod(name: str, app: str, namespace: str = "default") -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace,
                "labels": {"app": app}}, "spec": {"containers": [{"name": "app", "image": "app"}]}}

    kube_api.create(pod("reviews-1", "reviews"))
    kube_api.create(pod("ratings-1", "ratings"))
    pods = ResourceRef("", "v1", "pods")
    async with Follower(watch_resources(kube, pods, label_selector="app=reviews", settings=FAST)) as informer:
        events, _ = await informer.until_synced()
        kube_api.create(pod("ratings-2", "ratings"))
        kube_api.create(pod("reviews-2", "reviews", namespace="other"))
        later = await informer.next()
    assert summary(events) == [("ADDED", "reviews-1")]
    # Core list items come without apiVersion and kind; the client fills them in.
    assert (events[0].object["apiVersion"], events[0].object["kind"]) == ("v1", "Pod")
    assert summary([later]) == [("ADDED", "reviews-2")] and object_key(later.object) == ("other", "reviews-2")  # type: ignore[union-attr]


async def test_wrong_credentials_are_an_api_error(kube_api: FakeKubeApiServer, tmp_path: Any) -> None:
    stale = KubeClient.from_kubeconfig(kube_api.write_kubeconfig(tmp_path / "stale", token="revoked"))
    try:
        with pytest.raises(KubeApiError) as raised:
            await stale.list(VS)
    finally:
        stale.close()
    assert (raised.value.status, raised.value.reason) == (401, "Unauthorized")


async def test_an_unreachable_server_is_unavailable(tmp_path: Any) -> None:
    with FakeKubeApiServer() as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    # The server is gone: its port refuses connections.
    dead = KubeClient.from_kubeconfig(kubeconfig, request_timeout_s=2.0)
    try:
        with pytest.raises(KubeUnavailable) as raised:
            await dead.list(VS)
    finally:
        dead.close()
    assert raised.value.action == "list virtualservices.v1.networking.istio.io"


async def test_token_review_names_the_service_account(kube: KubeClient, kube_api: FakeKubeApiServer) -> None:
    kube_api.register_token("reviews-token", namespace="bookinfo", service_account="reviews",
                            audiences=("istio-ca",))
    kube_api.register_token("expired-token", namespace="bookinfo", service_account="reviews",
                            audiences=("istio-ca",), authenticated=False)
    assert await review_token(kube, "reviews-token", ["istio-ca"]) == ServiceAccount("bookinfo", "reviews")
    assert await review_token(kube, "reviews-token") == ("bookinfo", "reviews")
    for token, audiences, reason in [("reviews-token", ["other-audience"], "audiences"),
                                     ("expired-token", ["istio-ca"], "invalid bearer token"),
                                     ("never-issued", [], "invalid bearer token")]:
        with pytest.raises(TokenRejected, match=reason) as raised:
            await review_token(kube, token, audiences)
        assert raised.value.audiences == tuple(audiences)
        assert token not in str(raised.value)  # tokens never end up in errors or logs
    reviews = [r for r in kube_api.requests if r.path == "/apis/authentication.k8s.io/v1/tokenreviews"]
    assert len(reviews) == 5 and {r.method for r in reviews} == {"POST"}


def test_the_clients_own_watch_helper_reads_the_fake(kube_api: FakeKubeApiServer, kubectl: client.ApiClient,
                                                     kubectl_ops: Kubectl) -> None:
    """`kubernetes.watch.Watch`, as other tools use it: synthetic ADDED events for a watch
    without a resourceVersion, and a 410 it turns into `ApiException(410)`."""
    kubectl_ops.create(vs("a"))
    kubectl_ops.create(vs("b", "other"))
    custom = client.CustomObjectsApi(kubectl)
    stock = watch.Watch()
    seen = []
    for event in stock.stream(custom.list_cluster_custom_object, NET, "v1", "virtualservices", timeout_seconds=5):
        seen.append((event["type"], event["object"]["metadata"]["name"]))
        if len(seen) == 2:
            stock.stop()
    assert seen == [("ADDED", "a"), ("ADDED", "b")]
    kube_api.expire_history()
    with pytest.raises(ApiException) as raised:
        for _ in watch.Watch().stream(custom.list_cluster_custom_object, NET, "v1", "virtualservices",
                                      resource_version="1", timeout_seconds=5):
            pass
    assert raised.value.status == 410
