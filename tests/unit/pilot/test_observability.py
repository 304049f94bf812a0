"""What every proxy reports, as the mesh config and the Telemetry API ask: access logs,
the access log service, Zipkin tracing.  Pure; what Envoy does with it is checked in
tests/integration/telemetry."""

from __future__ import annotations

from envoy.extensions.access_loggers.file.v3 import file_pb2
from envoy.extensions.access_loggers.grpc.v3 import als_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm

from libs.envoy import CLUSTER_TYPE, LISTENER_TYPE
from services.pilot.model.mesh import apply_mesh_config
from services.pilot.model.push_context import PushContext
from services.pilot.networking import generator
from tests.unit.pilot.test_authz import WORKLOADS, chain, inbound, push_of, reviews, unpack


def test_mesh_config_turns_on_the_access_log_service_and_its_cluster() -> None:
    push = push_of()
    mesh = apply_mesh_config(push.mesh, {"enableEnvoyAccessLogService": True, "defaultConfig": {
        "envoyAccessLogService": {"address": "127.0.0.1:9092"}}, "accessLogFile": "/dev/stdout"})
    push = PushContext.build(push.config, mesh, workloads=WORKLOADS)
    config = generator.generate(reviews(), push)
    manager = unpack(chain(config.resources[LISTENER_TYPE]["virtualInbound"], "inbound|9080|plaintext").filters[0]
                     .typed_config, hcm.HttpConnectionManager)
    file_log, grpc_log = manager.access_log
    assert unpack(file_log.typed_config, file_pb2.FileAccessLog).path == "/dev/stdout"
    als = unpack(grpc_log.typed_config, als_pb2.HttpGrpcAccessLogConfig)
    assert als.common_config.grpc_service.envoy_grpc.cluster_name == "envoy_accesslog_service"
    assert list(als.additional_response_trailers_to_log) == ["grpc-status"]
    cluster = config.resources[CLUSTER_TYPE]["envoy_accesslog_service"]
    assert cluster.typed_extension_protocol_options  # HTTP/2, for gRPC


def test_telemetry_api_shapes_access_logs_and_traces_per_workload() -> None:
    """The Telemetry API's accessLogging and tracing reach the selected workload's inbound
    chains (and no one else's)."""
    telemetry = """apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: reviews-logs, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  accessLogging: [{providers: [{name: errors-file}], filter: {expression: "response.code >= 400"}}]
  tracing: [{randomSamplingPercentage: 50, customTags: {team: {literal: {value: books}}}}]
"""
    push = push_of(telemetry)
    mesh = apply_mesh_config(push.mesh, {"enableTracing": True, "defaultConfig": {"tracing": {"zipkin": {
        "address": "127.0.0.1:9411"}}}, "extensionProviders": [
        {"name": "errors-file", "envoyFileAccessLog": {"path": "/tmp/errors.log"}}]})
    push = PushContext.build(push.config, mesh, workloads=WORKLOADS)
    manager = unpack(chain(inbound(push), "inbound|9080|plaintext").filters[0].typed_config, hcm.HttpConnectionManager)
    [log] = manager.access_log
    assert unpack(log.typed_config, file_pb2.FileAccessLog).path == "/tmp/errors.log"
    assert log.filter.extension_filter.name == "envoy.access_loggers.extension_filters.cel"
    assert manager.tracing.random_sampling.value == 50
    assert [tag.tag for tag in manager.tracing.custom_tags] == ["team"]
    other = generator.generate(reviews(app="ratings"), push).resources[LISTENER_TYPE]["virtualInbound"]
    other_manager = unpack(chain(other, "inbound|9080|plaintext").filters[0].typed_config,
                           hcm.HttpConnectionManager)
    assert not other_manager.access_log and other_manager.tracing.random_sampling.value == 1.0
