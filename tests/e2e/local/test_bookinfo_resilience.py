"""Istio's timeout, circuit-breaking and mirroring tasks on Bookinfo in the local mesh."""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path

import httpx
import pytest

from tests.harness.http import HTTP
from tests.harness.local_mesh import LocalMesh

pytestmark = pytest.mark.e2e

REVIEWS_V2_TIMEOUT = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v2}}]
    timeout: 0.5s
"""
RATINGS_DELAY_2S = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - fault: {delay: {percentage: {value: 100}, fixedDelay: 2s}}
    route: [{destination: {host: ratings, subset: v1}}]
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def test_request_timeout(bookinfo: LocalMesh, tmp_path: Path) -> None:
    """Istio's request-timeouts task: ratings slowed to 2 s, reviews given 0.5 s."""
    bookinfo.apply(write(tmp_path, "ratings", RATINGS_DELAY_2S), write(tmp_path, "reviews", REVIEWS_V2_TIMEOUT))
    started = time.monotonic()
    status, html = bookinfo.productpage()
    elapsed = time.monotonic() - started
    assert status == 200
    assert "Sorry, product reviews are currently unavailable for this book." in html
    # Two tries by productpage, each cut at 0.5 s by the sidecar: about 1 s, not 2+.
    assert 0.9 < elapsed < 1.9, elapsed


def test_circuit_breaking(bookinfo: LocalMesh, tmp_path: Path) -> None:
    bookinfo.apply(write(tmp_path, "details-cb", """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: details}
spec:
  host: details
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}
    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 3m, maxEjectionPercent: 100}
  subsets:
  - {name: v1, labels: {version: v1}}
"""))
    sidecar = f"http://{bookinfo.address_of('productpage-v1')}:15001"

    def call(_: int) -> int:
        with httpx.Client(proxy=sidecar, timeout=10) as client:
            return client.get("http://details:9080/details/0").status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(call, range(60)))
    assert statuses.count(200) > 0
    assert statuses.count(503) > 0, statuses
    stats = HTTP.get(f"http://{bookinfo.address_of('productpage-v1')}:15000/stats",
                     params={"filter": "details.*pending_overflow"}, timeout=5).text
    assert any(line.endswith(tuple(f": {n}" for n in range(1, 1000))) for line in stats.splitlines()), stats


def test_mirroring(bookinfo: LocalMesh, tmp_path: Path) -> None:
    bookinfo.apply(write(tmp_path, "reviews-mirror", """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v1}, weight: 100}]
    mirror: {host: reviews, subset: v2}
    mirrorPercentage: {value: 100.0}
"""))
    log = bookinfo.state_dir / "logs" / "reviews-v2-app.log"
    before = log.read_text(errors="replace").count("/reviews/0")
    for _ in range(5):
        status, html = bookinfo.productpage()
        assert status == 200 and 'id="reviews-version">v1<' in html

    def mirrored() -> int:
        return log.read_text(errors="replace").count("/reviews/0") - before

    from tests.harness.waiting import wait_until

    wait_until(lambda: mirrored() >= 5, timeout=10, what="reviews v2 to receive the mirrored copies")
