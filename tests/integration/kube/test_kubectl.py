"""The real `kubectl` against the fake API server: apply, get, watch and delete of Namespaces,
Services, EndpointSlices, Pods and Istio CRs, each change checked in the fake's store and seen
by a libs.kube informer.  kubectl (client-go) sends its bearer token only over TLS, so the fake
serves HTTPS here, with its own CA in the kubeconfig."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from libs.kube import KubeClient, ResourceRef, WatchEvent, watch_resources
from tests.harness.debian import debian_tool
from tests.harness.kube_apiserver import FakeKubeApiServer
from tests.harness.kube_resources import CORE_TYPES, ISTIO_TYPES
from tests.harness.waiting import wait_until
from tests.integration.kube.conftest import FAST
from tests.integration.kube.helpers import Follower

pytestmark = pytest.mark.integration

KUBECTL_TIMEOUT_S = 30

SHOP = textwrap.dedent("""\
    apiVersion: v1
    kind: Namespace
    metadata:
      name: shop
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: reviews
      namespace: shop
      labels: {app: reviews, tier: backend}
    spec:
      selector: {app: reviews}
      ports:
      - {name: http, port: 9080, targetPort: 9080}
      - {name: grpc, port: 9090}
    ---
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata:
      name: reviews-abc
      namespace: shop
      labels: {kubernetes.io/service-name: reviews}
    addressType: IPv4
    ports:
    - {name: http, port: 9080, protocol: TCP}
    endpoints:
    - addresses: [127.0.0.2]
      conditions: {ready: true}
      targetRef: {kind: Pod, name: reviews-v1, namespace: shop}
    ---
    apiVersion: v1
    kind: Pod
    metadata:
      name: reviews-v1
      namespace: shop
      labels: {app: reviews, version: v1}
    spec:
      containers:
      - name: app
        image: reviews:v1
        ports:
        - {containerPort: 9080}
        - {containerPort: 9090}
    ---
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata:
      name: reviews
      namespace: shop
    spec:
      hosts: [reviews]
      gateways: [mesh]
      http:
      - route:
        - destination: {host: reviews}
    ---
    apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata:
      name: reviews
      namespace: shop
    spec:
      host: reviews
    """)


def _edited(text: str, *edits: tuple[str, str]) -> str:
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


# The same objects, changed: a port and a label gone from the Service, another endpoint, the
# Pod's image and one of its ports, the VirtualService's hosts and gateways.
SHOP_V2 = _edited(SHOP, ("labels: {app: reviews, tier: backend}", "labels: {app: reviews}"),
                  ("  - {name: grpc, port: 9090}\n", ""),
                  ("addresses: [127.0.0.2]", "addresses: [127.0.0.2, 127.0.0.3]"),
                  ("image: reviews:v1", "image: reviews:v2"),
                  ("    - {containerPort: 9090}\n", ""),
                  ("  hosts: [reviews]\n  gateways: [mesh]\n", "  hosts: [reviews, reviews.shop]\n"))

SERVICES, SLICES, PODS = (next(t for t in CORE_TYPES if t.plural == p) for p in ("services", "endpointslices", "pods"))
NAMESPACES = next(t for t in CORE_TYPES if t.plural == "namespaces")
VIRTUAL_SERVICES, DESTINATION_RULES = (next(t for t in ISTIO_TYPES if t.plural == p)
                                       for p in ("virtualservices", "destinationrules"))


@pytest.fixture
def kube_api() -> Iterator[FakeKubeApiServer]:
    """As the package's fixture, over TLS: the one transport kubectl will send a token on."""
    with FakeKubeApiServer(tls=True) as api:
        yield api


class Kubectl:
    """Runs the real kubectl, with its own HOME (a fresh discovery cache) and kubeconfig."""

    def __init__(self, binary: str, kubeconfig: Path, home: Path, files: Path) -> None:
        self.binary = binary
        self.env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "KUBECONFIG": str(kubeconfig)}
        self.files = files

    def file(self, name: str, text: str) -> str:
        path = self.files / name
        path.write_text(text)
        return str(path)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.binary, *args], env=self.env, capture_output=True, text=True,
                              timeout=KUBECTL_TIMEOUT_S, check=False)

    def __call__(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, f"kubectl {' '.join(args)} failed ({done.returncode}): {done.stderr}"
        return done.stdout

    def fails(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode != 0, f"kubectl {' '.join(args)} succeeded: {done.stdout}"
        return done.stderr

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json"))

    def stream(self, *args: str) -> Streamed:
        return Streamed([self.binary, *args], self.env)


class Streamed:
    """A long-running kubectl (`--watch`) whose output lines are collected as they come."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name="kubectl output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._lock:
                self._lines.append(line.rstrip("\n"))

    @property
    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def events(self) -> list[dict[str, Any]]:
        """The output of `-o json --output-watch-events`: one pretty-printed event after another."""
        decoder, text, found = json.JSONDecoder(), "\n".join(self.lines), []
        index = 0
        while index < len(text):
            if text[index].isspace():
                index += 1
                continue
            try:
                event, index = decoder.raw_decode(text, index)
            except json.JSONDecodeError:
                break  # an event still being written
            found.append(event)
        return found

    def __enter__(self) -> Streamed:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self._reader.join(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def kubectl(kubeconfig: Path, tmp_path: Path) -> Kubectl:
    """The real kubectl (overriding the package's stand-in of the same name)."""
    binary = debian_tool("kubectl", "kubernetes-client")
    (tmp_path / "home").mkdir()
    return Kubectl(binary, kubeconfig, tmp_path / "home", tmp_path)


def table_rows(text: str) -> list[dict[str, str]]:
    """kubectl's table output as one dict per row, cells cut at the header's column starts
    (cells may be empty); a blank line separates the tables of several kinds."""
    rows: list[dict[str, str]] = []
    header: list[tuple[str, int]] = []
    for line in text.splitlines():
        if not line.strip():
            header = []
        elif not header:
            header = [(word.group(), word.start()) for word in re.finditer(r"\S+", line)]
        else:
            bounds = [*(start for _, start in header[1:]), len(line) + 1]
            rows.append({name: line[start:end].strip() for (name, start), end in zip(header, bounds, strict=True)})
    return rows


def stored(api: FakeKubeApiServer, rtype: Any, name: str, namespace: str = "shop") -> dict[str, Any]:
    return api.store.get(rtype, (namespace if rtype.namespaced else "", name))


def last_applied(obj: dict[str, Any]) -> dict[str, Any]:
    return json.loads(obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])


def test_discovery_as_kubectl_reads_it(kubectl: Kubectl, kube_api: FakeKubeApiServer) -> None:
    assert json.loads(kubectl("version", "-o", "json"))["serverVersion"]["gitVersion"] == kube_api.version
    resources = table_rows(kubectl("api-resources"))
    short_names = {r["NAME"]: r["SHORTNAMES"] for r in resources}
    assert {name: short_names[name] for name in ("services", "pods", "namespaces", "endpointslices",
                                                 "virtualservices", "destinationrules")} == {
        "services": "svc", "pods": "po", "namespaces": "ns", "endpointslices": "", "virtualservices": "vs",
        "destinationrules": "dr"}
    assert {r["NAME"]: r["APIVERSION"] for r in resources}["virtualservices"] == "networking.istio.io/v1"
    assert kubectl("api-resources", "--namespaced=false", "-o", "name").split() == ["namespaces", "nodes"]
    group = json.loads(kubectl("get", "--raw", "/apis/networking.istio.io"))
    assert group["preferredVersion"]["version"] == "v1"


def test_apply_creates_each_kind_and_get_shows_them(kubectl: Kubectl, kube_api: FakeKubeApiServer) -> None:
    assert kubectl("apply", "-f", kubectl.file("shop.yaml", SHOP)).splitlines() == [
        "namespace/shop created", "service/reviews created", "endpointslice.discovery.k8s.io/reviews-abc created",
        "pod/reviews-v1 created", "virtualservice.networking.istio.io/reviews created",
        "destinationrule.networking.istio.io/reviews created"]

    # In the store as sent, with the annotation the next apply diffs against.
    documents = {d["kind"]: d for d in yaml.safe_load_all(SHOP)}
    for rtype, name in ((NAMESPACES, "shop"), (SERVICES, "reviews"), (SLICES, "reviews-abc"), (PODS, "reviews-v1"),
                        (VIRTUAL_SERVICES, "reviews"), (DESTINATION_RULES, "reviews")):
        obj = stored(kube_api, rtype, name)
        applied = last_applied(obj)
        assert applied["kind"] == rtype.kind and applied["metadata"]["name"] == name
        for field in ("spec", "endpoints", "ports", "addressType"):
            assert obj.get(field) == documents[rtype.kind].get(field) == applied.get(field)

    # Server-side printing (Table), several kinds at once, as a real server prints them.
    rows = table_rows(kubectl("get", "svc,endpointslices,pods,vs,dr", "-n", "shop"))
    assert [{k: v for k, v in row.items() if k != "AGE"} for row in rows] == [
        {"NAME": "service/reviews", "TYPE": "ClusterIP", "CLUSTER-IP": "<none>", "EXTERNAL-IP": "<none>",
         "PORT(S)": "9080/TCP,9090/TCP"},
        {"NAME": "endpointslice.discovery.k8s.io/reviews-abc", "ADDRESSTYPE": "IPv4", "PORTS": "9080",
         "ENDPOINTS": "127.0.0.2"},
        {"NAME": "pod/reviews-v1", "READY": "0/1", "STATUS": "", "RESTARTS": "0"},
        {"NAME": "virtualservice.networking.istio.io/reviews", "GATEWAYS": '["mesh"]', "HOSTS": '["reviews"]'},
        {"NAME": "destinationrule.networking.istio.io/reviews", "HOST": "reviews"}]
    assert all(row["AGE"].endswith("s") for row in rows)
    wide = table_rows(kubectl("get", "services", "-n", "shop", "-o", "wide"))
    assert wide[0]["SELECTOR"] == "app=reviews"
    assert [(r["NAMESPACE"], r["NAME"]) for r in table_rows(kubectl("get", "vs", "--all-namespaces"))] == [
        ("shop", "reviews")]
    assert [(r["NAME"], r["STATUS"]) for r in table_rows(kubectl("get", "namespaces"))] == [("shop", "Active")]
    assert kubectl("get", "all", "-n", "shop", "-o", "name").split() == ["pod/reviews-v1", "service/reviews"]

    # The objects themselves, served at the version asked for.
    virtual_service = yaml.safe_load(kubectl("get", "virtualservice", "reviews", "-n", "shop", "-o", "yaml"))
    assert virtual_service["apiVersion"] == "networking.istio.io/v1"
    assert virtual_service["spec"] == documents["VirtualService"]["spec"]
    old = yaml.safe_load(kubectl("get", "virtualservices.v1alpha3.networking.istio.io", "reviews", "-n", "shop",
                                 "-o", "yaml"))
    assert old["apiVersion"] == "networking.istio.io/v1alpha3" and old["spec"] == virtual_service["spec"]
    pods = kubectl.json("get", "pods", "-n", "shop")
    assert pods["kind"] == "List" and [p["metadata"]["name"] for p in pods["items"]] == ["reviews-v1"]
    assert pods["items"][0]["spec"] == documents["Pod"]["spec"]

    # Label and field selectors, answered by the server.
    assert kubectl("get", "pods", "-n", "shop", "-l", "version=v1", "-o", "name").split() == ["pod/reviews-v1"]
    assert kubectl("get", "pods", "-n", "shop", "-l", "app=reviews,version notin (v1)", "-o", "name") == ""
    assert kubectl("get", "svc", "-A", "-l", "tier", "-o", "name").split() == ["service/reviews"]
    assert kubectl("get", "pods", "-A", "--field-selector", "metadata.name=reviews-v1", "-o", "name").split() == [
        "pod/reviews-v1"]
    assert "field label not supported: spec.nope" in kubectl.fails("get", "pods", "--field-selector", "spec.nope=1")
    assert any(r.query.get("labelSelector") == "version=v1" for r in kube_api.list_requests("pods"))


def test_apply_again_patches_only_what_changed(kubectl: Kubectl, kube_api: FakeKubeApiServer) -> None:
    kubectl("apply", "-f", kubectl.file("shop.yaml", SHOP))
    kinds = {"namespace": (NAMESPACES, "shop"), "service": (SERVICES, "reviews"),
             "endpointslice": (SLICES, "reviews-abc"), "pod": (PODS, "reviews-v1"),
             "virtualservice": (VIRTUAL_SERVICES, "reviews"), "destinationrule": (DESTINATION_RULES, "reviews")}
    before = {kind: stored(kube_api, *key) for kind, key in kinds.items()}

    assert kubectl("apply", "-f", kubectl.file("shop-v2.yaml", SHOP_V2)).splitlines() == [
        "namespace/shop unchanged", "service/reviews configured",
        "endpointslice.discovery.k8s.io/reviews-abc configured", "pod/reviews-v1 configured",
        "virtualservice.networking.istio.io/reviews configured",
        "destinationrule.networking.istio.io/reviews unchanged"]

    after = {kind: stored(kube_api, *key) for kind, key in kinds.items()}
    # What the file dropped is gone from the live object (the three-way merge with the last
    # applied configuration), what it changed is changed, and nothing else moved.
    assert after["service"]["metadata"]["labels"] == {"app": "reviews"}
    assert after["service"]["spec"]["ports"] == [{"name": "http", "port": 9080, "targetPort": 9080}]
    assert after["endpointslice"]["endpoints"][0]["addresses"] == ["127.0.0.2", "127.0.0.3"]
    assert after["pod"]["spec"]["containers"] == [{"name": "app", "image": "reviews:v2",
                                                   "ports": [{"containerPort": 9080}]}]
    assert after["virtualservice"]["spec"] == {"hosts": ["reviews", "reviews.shop"],
                                               "http": [{"route": [{"destination": {"host": "reviews"}}]}]}
    for kind in kinds:
        moved = int(after[kind]["metadata"]["resourceVersion"]) > int(before[kind]["metadata"]["resourceVersion"])
        assert moved == (kind not in ("namespace", "destinationrule")), kind
        assert after[kind]["metadata"]["uid"] == before[kind]["metadata"]["uid"]
    assert last_applied(after["pod"])["spec"]["containers"][0]["image"] == "reviews:v2"

    # Client-side apply: strategic merge patches for the kinds kubectl has built in, JSON merge
    # patches for CRs (and, from a kubectl older than discovery.k8s.io/v1, for EndpointSlices).
    patches = {r.path.rsplit("/", 2)[1]: r.content_type for r in kube_api.requests if r.method == "PATCH"}
    assert patches.pop("endpointslices") in ("application/strategic-merge-patch+json", "application/merge-patch+json")
    assert patches == {"services": "application/strategic-merge-patch+json",
                       "pods": "application/strategic-merge-patch+json",
                       "virtualservices": "application/merge-patch+json"}

    # Applying the same file again changes nothing.
    again = kubectl("apply", "-f", kubectl.file("shop-v2.yaml", SHOP_V2)).splitlines()
    assert len(again) == len(kinds) and all(line.endswith(" unchanged") for line in again)
    assert kube_api.store.resource_version == max(int(o["metadata"]["resourceVersion"]) for o in after.values())


def test_patch_types_from_kubectl_patch(kubectl: Kubectl, kube_api: FakeKubeApiServer) -> None:
    kubectl("apply", "-f", kubectl.file("shop.yaml", SHOP))
    kubectl("patch", "service", "reviews", "-n", "shop", "-p", '{"spec":{"ports":[{"port":9090,"name":"grpc-web"}]}}')
    kubectl("patch", "service", "reviews", "-n", "shop", "--type=json",
            "-p", '[{"op":"add","path":"/metadata/labels/owner","value":"team-a"}]')
    kubectl("patch", "vs", "reviews", "-n", "shop", "--type=merge", "-p", '{"spec":{"gateways":null}}')
    service = stored(kube_api, SERVICES, "reviews")
    assert [(p["port"], p["name"]) for p in service["spec"]["ports"]] == [(9080, "http"), (9090, "grpc-web")]
    assert service["metadata"]["labels"]["owner"] == "team-a"
    assert "gateways" not in stored(kube_api, VIRTUAL_SERVICES, "reviews")["spec"]
    # As on a real server: no strategic merge for a custom resource, no test that fails.
    assert "the body of the request was in an unknown format" in kubectl.fails(
        "patch", "vs", "reviews", "-n", "shop", "-p", '{"spec":{"hosts":["x"]}}')
    assert "The request is invalid" in kubectl.fails(
        "patch", "service", "reviews", "-n", "shop", "--type=json",
        "-p", '[{"op":"test","path":"/metadata/labels/owner","value":"team-b"}]')
    assert stored(kube_api, SERVICES, "reviews") == service


def test_watch_streams_each_change(kubectl: Kubectl, kube_api: FakeKubeApiServer) -> None:
    kubectl("apply", "-f", kubectl.file("shop.yaml", SHOP))
    with (kubectl.stream("get", "vs", "-n", "shop", "--watch") as table,
          kubectl.stream("get", "pods", "-n", "shop", "--watch", "-o", "json", "--output-watch-events") as events):
        # Ready once each has listed (printed) and its watch is open on the server.
        wait_until(lambda: len(table.lines) == 2 and events.events()
                   and kube_api.open_watches("virtualservices") == kube_api.open_watches("pods") == 1,
                   timeout=KUBECTL_TIMEOUT_S, what="both watches to start")
        kubectl("apply", "-f", kubectl.file("shop-v2.yaml", SHOP_V2))
        wait_until(lambda: len(table.lines) == 3, timeout=KUBECTL_TIMEOUT_S, what="the watched change")
        kubectl("delete", "pod", "reviews-v1", "-n", "shop")
        wait_until(lambda: [e["type"] for e in events.events()] == ["ADDED", "MODIFIED", "DELETED"],
                   timeout=KUBECTL_TIMEOUT_S, what="the pod's events")

    header, first, changed = (line.split() for line in table.lines)
    assert header == ["NAME", "GATEWAYS", "HOSTS", "AGE"]  # column definitions, sent once
    assert first[:3] == ["reviews", '["mesh"]', '["reviews"]']
    assert changed[:2] == ["reviews", '["reviews","reviews.shop"]']
    images = [e["object"]["spec"]["containers"][0]["image"] for e in events.events()]
    assert images == ["reviews:v1", "reviews:v2", "reviews:v2"]
    # kubectl went away: the server noticed and ended both watches.
    wait_until(lambda: kube_api.open_watches() == 0, timeout=10, what="the watches to end")


def test_watch_services_and_endpoint_slices(kubectl: Kubectl, kube_api: FakeKubeApiServer) -> None:
    kubectl("apply", "-f", kubectl.file("shop.yaml", SHOP))
    with (kubectl.stream("get", "svc", "-n", "shop", "--watch", "-o", "json", "--output-watch-events") as services,
          kubectl.stream("get", "endpointslices", "-n", "shop", "--watch", "-o", "json",
                         "--output-watch-events") as slices):
        wait_until(lambda: services.events() and slices.events()
                   and kube_api.open_watches("services") == kube_api.open_watches("endpointslices") == 1,
                   timeout=KUBECTL_TIMEOUT_S, what="both watches to start")
        kubectl("apply", "-f", kubectl.file("shop-v2.yaml", SHOP_V2))
        kubectl("delete", "service", "reviews", "-n", "shop")
        kubectl("delete", "endpointslice", "reviews-abc", "-n", "shop")
        for stream in (services, slices):
            wait_until(lambda s=stream: [e["type"] for e in s.events()] == ["ADDED", "MODIFIED", "DELETED"],
                       timeout=KUBECTL_TIMEOUT_S, what="the events")  # type: ignore[misc]
    assert [[p["name"] for p in e["object"]["spec"]["ports"]] for e in services.events()] == [
        ["http", "grpc"], ["http"], ["http"]]
    assert [e["object"]["endpoints"][0]["addresses"] for e in slices.events()] == [
        ["127.0.0.2"], ["127.0.0.2", "127.0.0.3"], ["127.0.0.2", "127.0.0.3"]]


def test_delete_by_name_and_by_file(kubectl: Kubectl, kube_api: FakeKubeApiServer) -> None:
    kubectl("apply", "-f", kubectl.file("shop.yaml", SHOP))
    assert kubectl("delete", "virtualservice", "reviews", "-n", "shop").strip() == (
        'virtualservice.networking.istio.io "reviews" deleted')
    assert 'virtualservices.networking.istio.io "reviews" not found' in kubectl.fails(
        "get", "vs", "reviews", "-n", "shop")
    objects = kubectl.file("objects.yaml", SHOP.split("---\n", 1)[1])  # all but the namespace
    assert 'virtualservices.networking.istio.io "reviews" not found' in kubectl.fails("delete", "-f", objects)
    assert kubectl("get", "svc,endpointslices,pods,vs,dr", "-A", "-o", "name") == ""
    for rtype in (SERVICES, SLICES, PODS, VIRTUAL_SERVICES, DESTINATION_RULES):
        assert kube_api.store.list(rtype, None, lambda labels: True)[0] == [], rtype.plural

    # Deleting a namespace deletes what is in it, as the namespace controller does (at once,
    # here, where a real namespace is Terminating until its controller has emptied it).
    kubectl("apply", "-f", objects)
    assert kubectl("delete", "namespace", "shop").strip() == 'namespace "shop" deleted'
    assert kubectl("get", "namespaces,svc,endpointslices,pods,vs,dr", "-A", "-o", "name") == ""


async def test_an_informer_sees_each_kubectl_change(kubectl: Kubectl, kube: KubeClient,
                                                    kube_api: FakeKubeApiServer) -> None:
    refs = {"services": ResourceRef("", "v1", "services"),
            "endpointslices": ResourceRef("discovery.k8s.io", "v1", "endpointslices"),
            "pods": ResourceRef("", "v1", "pods"),
            "virtualservices": ResourceRef("networking.istio.io", "v1", "virtualservices")}
    followers = {plural: Follower(watch_resources(kube, ref, namespace="shop", settings=FAST))
                 for plural, ref in refs.items()}
    for follower in followers.values():
        await follower.__aenter__()
    try:
        for follower in followers.values():
            assert (await follower.until_synced())[0] == []

        async def next_events() -> dict[str, tuple[str, dict[str, Any]]]:
            found: dict[str, tuple[str, dict[str, Any]]] = {}
            for plural, follower in followers.items():
                item = await follower.next()
                assert isinstance(item, WatchEvent), item
                found[plural] = (item.type, item.object)
            return found

        await asyncio.to_thread(kubectl, "apply", "-f", kubectl.file("shop.yaml", SHOP))
        added = await next_events()
        assert {plural: event[0] for plural, event in added.items()} == dict.fromkeys(refs, "ADDED")

        await asyncio.to_thread(kubectl, "apply", "-f", kubectl.file("shop-v2.yaml", SHOP_V2))
        modified = await next_events()
        assert {plural: event[0] for plural, event in modified.items()} == dict.fromkeys(refs, "MODIFIED")
        assert modified["pods"][1]["spec"]["containers"][0]["image"] == "reviews:v2"
        assert modified["virtualservices"][1]["spec"]["hosts"] == ["reviews", "reviews.shop"]
        assert modified["endpointslices"][1]["endpoints"][0]["addresses"] == ["127.0.0.2", "127.0.0.3"]

        await asyncio.to_thread(kubectl, "delete", "namespace", "shop")  # and so everything in it
        deleted = await next_events()
        assert {plural: event[0] for plural, event in deleted.items()} == dict.fromkeys(refs, "DELETED")
    finally:
        for follower in followers.values():
            await follower.__aexit__(None, None, None)
