"""mTLS between every sidecar in the local mesh, and egress through the egress gateway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from samples.echo import EchoServer
from tests.harness.http import HTTP
from tests.harness.local_mesh import LocalMesh
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.e2e

STRICT = """\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
"""


def test_strict_mtls_mesh_wide(bookinfo: LocalMesh, tmp_path: Path) -> None:
    details = f"http://{bookinfo.address_of('details-v1')}:9080/details/0"
    assert HTTP.get(details, timeout=5).status_code == 200, "PERMISSIVE by default: plaintext accepted"
    policy = tmp_path / "strict.yaml"
    policy.write_text(STRICT)
    bookinfo.apply(policy)
    # Plaintext to a workload's inbound port is refused...
    with pytest.raises(httpx.HTTPError):
        HTTP.get(details, timeout=5)
    # ...while the mesh keeps working: every hop between sidecars is mTLS.
    status, html = bookinfo.productpage()
    assert status == 200
    assert "ISBN-10" in html, "details answered productpage over mTLS"
    stats = HTTP.get(f"http://{bookinfo.address_of('details-v1')}:15000/stats",
                     params={"filter": r"^listener\..*_9080\.ssl\.handshake$"}, timeout=5).text
    assert any(int(line.rsplit(": ", 1)[1]) > 0 for line in stats.splitlines() if ": " in line), stats


@pytest.fixture
def external(local_mesh: LocalMesh) -> Iterator[EchoServer]:
    """A server outside the mesh: no sidecar, its own address."""
    with EchoServer("external", f"127.{local_mesh.subnet}.3.1", 8000) as server:
        yield server


def test_egress_through_the_egress_gateway(bookinfo: LocalMesh, external: EchoServer, tmp_path: Path) -> None:
    config = tmp_path / "egress.yaml"
    config.write_text(f"""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: external-api}}
spec:
  hosts: [api.external.test]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints: [{{address: {external.host}, ports: {{http: {external.port}}}}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: istio-egressgateway}}
spec:
  selector: {{istio: egressgateway}}
  servers:
  - port: {{number: 8080, name: http, protocol: HTTP}}
    hosts: [api.external.test]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: external-through-egress}}
spec:
  hosts: [api.external.test]
  gateways: [istio-egressgateway, mesh]
  http:
  - match: [{{gateways: [mesh], port: 80}}]
    route: [{{destination: {{host: istio-egressgateway.istio-system.svc.cluster.local, port: {{number: 80}}}}}}]
  - match: [{{gateways: [istio-egressgateway], port: 8080}}]
    route: [{{destination: {{host: api.external.test, port: {{number: 80}}}}}}]
""")
    bookinfo.apply(config)
    sidecar = f"http://{bookinfo.address_of('productpage-v1')}:15001"
    with httpx.Client(proxy=sidecar, timeout=10) as client:
        response = client.get("http://api.external.test/hello")
    assert response.status_code == 200, response.text
    assert response.headers["x-upstream"] == "external"
    assert external.hits and external.hits[-1]["path"] == "/hello"
    # It went through the egress gateway, which counted the request to the external service.
    egress_admin = f"http://127.{bookinfo.subnet}.2.2:15000/stats"

    def egress_requests() -> int:
        text = HTTP.get(egress_admin, params={"filter": r"outbound\|80\|\|api\.external\.test\.upstream_rq_total"},
                        timeout=5).text
        return sum(int(line.rsplit(": ", 1)[1]) for line in text.splitlines() if ": " in line)

    assert wait_until(egress_requests, timeout=5, what="the egress gateway's request count") >= 1
