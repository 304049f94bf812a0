"""The analysis' inputs (pilot's registry, files, the overlay) and its messages' shapes."""

from __future__ import annotations

from libs.analysis import Inputs, Level, Message, Ref, analyze, from_pilot
from libs.analysis._messages import ReferencedResourceNotFound, quoted
from libs.analysis.files import overlay, read_files

PLATFORMZ = {
    "version": "7",
    "services": [
        {"hostname": "reviews.default.svc.cluster.local", "namespace": "default",
         "source": "Kubernetes Service default/reviews", "meshExternal": False,
         "ports": [{"name": "web", "port": 9080, "protocol": "TCP", "targetPort": 9080, "appProtocol": None}],
         "endpoints": {"9080": ["10.0.0.1:9080"]}},
        {"hostname": "ratings.default.svc.cluster.local", "namespace": "default",
         "source": "ServiceEntry default/ratings", "meshExternal": False, "ports": [], "endpoints": {}},
    ],
    "workloads": [
        {"name": "reviews-v1", "namespace": "default", "address": "10.0.0.1", "labels": {"app": "reviews"},
         "serviceAccount": "bookinfo-reviews", "sidecar": True, "source": "registry"},
        {"name": "vm", "namespace": "default", "address": "10.0.0.9", "labels": {}, "source": "WorkloadEntry"},
    ],
}


def test_pilots_registry_less_what_config_defined_is_the_platform() -> None:
    platform = from_pilot(PLATFORMZ)
    assert [(s.name, s.hostname, s.addresses) for s in platform.services] == [
        ("reviews", "reviews.default.svc.cluster.local", ("10.0.0.1",))]
    assert platform.services[0].ports[0].target_port == "9080"
    assert [(w.name, w.service_account) for w in platform.workloads] == [("reviews-v1", "bookinfo-reviews")]


def test_a_registry_service_selects_its_endpoints_workloads() -> None:
    config = b"""\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {app: reviews}}, {name: v9, labels: {version: v9}}]
"""
    read = read_files([("dr.yaml", config)])
    found = analyze(Inputs(read.resources, from_pilot(PLATFORMZ), read.origins))
    assert [m.text for m in found if m.code == "IST0173"] == [
        "The Subset v9 defined in the DestinationRule does not select any pods. Which may lead to 503 UH "
        "(NoHealthyUpstream)."]
    # And its port named "web" is not a protocol.
    assert sorted(m.code for m in found) == ["IST0118", "IST0173"]


def test_files_override_live_config_and_later_files_earlier_ones() -> None:
    first = (b"apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  selector: {a: b}\n"
             b"  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]\n")
    second = first.replace(b"{a: b}", b"{a: c}")
    read = read_files([("one.yaml", first), ("two.yaml", second)], default_namespace="shop")
    assert [(r.namespace, r.spec["selector"]) for r in read.resources] == [("shop", {"a": "c"})]
    assert read.origins == {"Gateway shop/gw": "two.yaml[0]"}
    live = read_files([("live.yaml", first.replace(b"name: gw", b"name: other"))], default_namespace="shop")
    merged = overlay([*live.resources, *read_files([("x.yaml", first)], default_namespace="shop").resources],
                     read.resources)
    assert sorted((r.name, r.spec["selector"]["a"]) for r in merged) == [("gw", "c"), ("other", "b")]


def test_unreadable_documents_and_kubernetes_manifests_are_told_apart() -> None:
    read = read_files([("bad.yaml", b"kind: [\n"),
                       ("ns.yaml", b"apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n"),
                       ("secret.yaml", b"apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n")])
    assert len(read.errors) == 1 and read.errors[0].startswith("bad.yaml")
    assert read.platform.namespaces == frozenset({"x"})
    assert read.resources == []


def test_messages_print_as_istioctl_prints_them() -> None:
    message = Message(ReferencedResourceNotFound, Ref("VirtualService", "default", "reviews"),
                      ("host", quoted("ratings2")))
    assert str(message) == 'Error [IST0101] (VirtualService default/reviews) Referenced host not found: "ratings2"'
    assert message.to_dict() == {
        "code": "IST0101", "documentationUrl": "https://istio.io/latest/docs/reference/config/analysis/ist0101/",
        "level": "Error", "message": 'Referenced host not found: "ratings2"',
        "origin": "VirtualService default/reviews"}
    with_file = Message(ReferencedResourceNotFound, Ref("VirtualService", "default", "reviews", "vs.yaml[0]"),
                        ("host", quoted("x")))
    assert str(with_file).startswith("Error [IST0101] (VirtualService default/reviews vs.yaml[0]) ")
    assert with_file.to_dict()["reference"] == "vs.yaml[0]"
    assert Level.parse("warning") is Level.WARNING and Level.INFO < Level.WARNING < Level.ERROR
