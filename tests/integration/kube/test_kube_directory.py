"""Telemetry and policy on Kubernetes: injected sidecars register nowhere but the API
server, so both services join an address with the Pods and Services the fake API server
holds — telemetry names the caller's workload (its Deployment, through the ReplicaSet)
and the destination service, and a Mixer rule on the caller's labels applies."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.data.accesslog.v3 import accesslog_pb2
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from google.protobuf import struct_pb2
from prometheus_client.parser import text_string_to_metric_families

from tests.harness.config_env import ConfigEnv
from tests.harness.kube_apiserver import FakeKubeApiServer
from tests.harness.mesh import Mesh, PolicyService, TelemetryService
from tests.harness.nats import start_nats
from tests.harness.processes import ProcessGroup
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

PRODUCTPAGE_IP, REVIEWS_IP = "10.44.0.7", "10.44.0.9"


def pod(name: str, ip: str, labels: dict[str, str], owner: str, template_hash: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{owner}-x1y2z", "namespace": "default",
                         "labels": {**labels, "pod-template-hash": template_hash},
                         "annotations": {"sidecar.istio.io/status": "{}"},
                         "ownerReferences": [{"kind": "ReplicaSet", "name": f"{owner}", "controller": True,
                                              "apiVersion": "apps/v1", "uid": name}]},
            "spec": {"serviceAccountName": f"bookinfo-{labels['app']}", "containers": [{"name": "app"}]},
            "status": {"phase": "Running", "podIP": ip}}


DENY_V1_CALLERS = """\
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: nov1, namespace: default}
spec: {compiledAdapter: denier, params: {status: {code: 7, message: no v1 callers}}}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: nov1, namespace: default}
spec: {compiledTemplate: checknothing}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: nov1, namespace: default}
spec:
  match: source.labels["version"] == "v1" && destination.labels["app"] == "reviews"
  actions: [{handler: nov1, instances: [nov1]}]
"""


@dataclass
class World:
    telemetry: TelemetryService
    policy: PolicyService
    config: ConfigEnv


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base: Path = tmp_path_factory.mktemp("kube-directory")
    for folder in ("logs", "mesh", "config"):
        (base / folder).mkdir()
    group = ProcessGroup(base / "logs")
    with FakeKubeApiServer() as kube:
        try:
            kube.create(pod("productpage", PRODUCTPAGE_IP, {"app": "productpage", "version": "v1"},
                            "productpage-v1-5f8d7c9b4", "5f8d7c9b4"))
            kube.create(pod("reviews", REVIEWS_IP, {"app": "reviews", "version": "v2"}, "reviews-v2-6c7d8e9f0",
                            "6c7d8e9f0"))
            kube.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "reviews", "namespace": "default"},
                         "spec": {"selector": {"app": "reviews"}, "ports": [{"name": "http", "port": 9080}]}})
            kubeconfig = kube.write_kubeconfig(base / "kubeconfig")
            nats = start_nats(group, base / "nats")
            mesh = Mesh(group, nats, base / "mesh")
            registry = ("--registries", "kubernetes", "--kube-config", str(kubeconfig))
            config = ConfigEnv.start(mesh, base / "config")
            config.apply("rules", DENY_V1_CALLERS)
            yield World(mesh.telemetry(*registry), mesh.policy(*registry), config)
        finally:
            group.stop_all()


def _inbound_entry() -> als_pb2.StreamAccessLogsMessage:
    """reviews' sidecar reporting one request from productpage's address."""
    metadata = struct_pb2.Struct()
    metadata.update({"NAMESPACE": "default", "LABELS": {"app": "reviews", "version": "v2"},
                     "WORKLOAD_NAME": "reviews-v2", "SERVICE_ACCOUNT": "bookinfo-reviews"})
    message = als_pb2.StreamAccessLogsMessage()
    message.identifier.node.CopyFrom(base_pb2.Node(
        id=f"sidecar~{REVIEWS_IP}~reviews-v2-6c7d8e9f0-x1y2z.default~default.svc.cluster.local", metadata=metadata))
    message.identifier.log_name = "test"
    entry = accesslog_pb2.HTTPAccessLogEntry()
    entry.common_properties.upstream_cluster = "inbound|9080||"
    entry.common_properties.downstream_direct_remote_address.socket_address.address = PRODUCTPAGE_IP
    entry.common_properties.time_to_last_downstream_tx_byte.nanos = 2_000_000
    entry.response.response_code.value = 200
    message.http_logs.log_entry.append(entry)
    return message


def test_telemetry_names_kubernetes_workloads_and_services(world: World) -> None:
    async def report() -> None:
        async with grpc.aio.insecure_channel(world.telemetry.als_address) as channel:
            await als_pb2_grpc.AccessLogServiceStub(channel).StreamAccessLogs(iter([_inbound_entry()]))

    asyncio.run(report())

    def series() -> list[dict[str, str]]:
        return [dict(sample.labels) for family in text_string_to_metric_families(world.telemetry.metrics())
                for sample in family.samples if sample.name == "istio_requests_total"]

    [labels] = wait_until(lambda: series() or None, timeout=15, what="the request to be counted")
    assert (labels["source_workload"], labels["source_app"], labels["source_version"]) == (
        "productpage-v1", "productpage", "v1")
    assert labels["destination_service"] == "reviews.default.svc.cluster.local"


def test_policy_matches_a_kubernetes_callers_labels(world: World) -> None:
    def check(source: str) -> int:
        async def ask() -> int:
            request = external_auth_pb2.CheckRequest()
            request.attributes.source.address.socket_address.address = source
            request.attributes.destination.address.socket_address.address = REVIEWS_IP
            request.attributes.request.http.method = "GET"
            request.attributes.request.http.path = "/reviews/1"
            async with grpc.aio.insecure_channel(world.policy.address) as channel:
                answer = await external_auth_pb2_grpc.AuthorizationStub(channel).Check(request)
            return int(answer.status.code)

        return asyncio.run(ask())

    revision = world.config.sync()
    wait_until(lambda: world.policy.metric("policy_config_revision") >= int(revision.split(".")[0]), timeout=15,
               what="policy to run the rule")
    assert check(PRODUCTPAGE_IP) == 7  # productpage is version v1: denied
    assert check("10.44.0.99") == 0  # nobody Kubernetes knows: the rule cannot apply
