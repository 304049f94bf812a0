"""Pods and Services as the directory's sources (telemetry's and policy's join on Kubernetes)."""

from __future__ import annotations

from typing import Any

from libs.config.directory import build
from libs.config.kube_directory import pod_registration, service_selectors, workload_name


def pod(*, owner: dict[str, Any] | None = None, template_hash: str = "", ip: str = "10.1.0.4",
        phase: str = "Running", annotations: dict[str, str] | None = None) -> dict[str, Any]:
    labels = {"app": "reviews", "version": "v1", **({"pod-template-hash": template_hash} if template_hash else {})}
    return {"metadata": {"name": "reviews-v1-7f9c-abcde", "namespace": "shop", "labels": labels,
                         "annotations": annotations or {}, "ownerReferences": [owner] if owner else []},
            "spec": {"serviceAccountName": "bookinfo-reviews"}, "status": {"phase": phase, "podIP": ip}}


def test_the_workload_is_the_deployment_behind_the_replicaset() -> None:
    replica_set = {"kind": "ReplicaSet", "name": "reviews-v1-7f9c", "controller": True}
    assert workload_name(pod(owner=replica_set, template_hash="7f9c")) == "reviews-v1"
    # Without the hash label the ReplicaSet's own name stands.
    assert workload_name(pod(owner=replica_set)) == "reviews-v1-7f9c"
    assert workload_name(pod(owner={"kind": "StatefulSet", "name": "db", "controller": True})) == "db"
    assert workload_name(pod()) == "reviews-v1-7f9c-abcde"


def test_running_pods_with_an_ip_are_workloads() -> None:
    registration = pod_registration(pod(annotations={"sidecar.istio.io/status": "{}"}))
    assert registration is not None
    assert (registration.address, registration.namespace, registration.service_account, registration.sidecar) == (
        "10.1.0.4", "shop", "bookinfo-reviews", True)
    assert pod_registration(pod(ip="")) is None
    assert pod_registration(pod(phase="Failed")) is None
    plain = pod_registration(pod())
    assert plain is not None and not plain.sidecar


def test_services_select_pods_by_label() -> None:
    services = [{"metadata": {"name": "reviews", "namespace": "shop"}, "spec": {"selector": {"app": "reviews"}}},
                {"metadata": {"name": "external", "namespace": "shop"}, "spec": {"type": "ExternalName"}}]
    selectors = service_selectors(services, "cluster.local")
    assert selectors == [("reviews.shop.svc.cluster.local", "shop", {"app": "reviews"})]
    registration = pod_registration(pod())
    assert registration is not None
    directory = build([registration], [], selectors)
    workload = directory.workload_at("10.1.0.4")
    assert workload is not None
    assert directory.services_of(workload) == ["reviews.shop.svc.cluster.local"]
    service = directory.service("reviews.shop.svc.cluster.local")
    assert service is not None and (service.name, service.namespace) == ("reviews", "shop")
