"""Proxyless gRPC for tests: grpcio servers that answer with their own name, and a grpcio
xDS client process (its own bootstrap, naming pilot) that tests drive over HTTP."""

from __future__ import annotations

from collections import Counter
from concurrent import futures
from dataclasses import dataclass, field

import grpc

from libs.envoy import grpc_bootstrap
from tests.harness.http import HTTP
from tests.harness.mesh import PilotService
from tests.harness.ports import free_port
from tests.harness.processes import Process, ProcessGroup
from tests.harness.waiting import wait_until

ECHO_SERVICE = "mizzen.test.Echo"
ECHO_METHOD = f"/{ECHO_SERVICE}/Who"


class GrpcEchoServer:
    """A real grpcio server on 127.0.0.1 whose one unary method answers `name` (raw bytes,
    no .proto)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.host = "127.0.0.1"
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handler = grpc.unary_unary_rpc_method_handler(lambda request, context: name.encode())
        self._server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(ECHO_SERVICE, {"Who": handler})])
        self.port = self._server.add_insecure_port(f"{self.host}:0")
        self._server.start()

    def stop(self) -> None:
        self._server.stop(grace=None).wait()


@dataclass
class XdsClient:
    """The client process; `node_id` is how pilot knows it."""

    process: Process
    port: int
    node_id: str
    # Targets with an open channel.
    targets: set[str] = field(default_factory=set)

    def call(self, target: str, n: int = 1, *, metadata: dict[str, str] | None = None,
             timeout_s: float = 5.0) -> Counter[str]:
        params: list[tuple[str, str | int | float | bool | None]] = [
            ("target", target), ("n", n), ("timeout", timeout_s)]
        params.extend(("md", f"{k}:{v}") for k, v in (metadata or {}).items())
        response = HTTP.get(f"http://127.0.0.1:{self.port}/call", params=params, timeout=n * timeout_s + 10)
        response.raise_for_status()
        self.targets.add(target)
        return Counter(response.json()["answers"])

    def close(self, target: str) -> None:
        HTTP.get(f"http://127.0.0.1:{self.port}/close", params={"target": target}, timeout=10).raise_for_status()
        self.targets.discard(target)


def start_client(group: ProcessGroup, pilot: PilotService, *, pod: str, namespace: str = "default",
                 labels: dict[str, str] | None = None) -> XdsClient:
    document = grpc_bootstrap.bootstrap(pilot.address, pod=pod, namespace=namespace, labels=labels)
    port = free_port()
    process = group.python(pod, "tests.harness.grpc_xds_client", "--port", str(port),
                           env=grpc_bootstrap.environment(document))
    wait_until(lambda: HTTP.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200,
               timeout=20, what=f"{pod} to serve its control port")
    return XdsClient(process, port, document["node"]["id"])
