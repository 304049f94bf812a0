"""Telemetry on the local mesh's Bookinfo, as a user meets it: Istio's metrics counting the
requests a reader makes, one trace per page with every hop nested, a real Prometheus
scraping telemetry, and the live service graph drawn by a real browser."""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from samples.bookinfo.productpage import DETAILS_ERROR, REVIEWS_ERROR
from samples.bookinfo.reviews import RATINGS_UNAVAILABLE
from services.telemetry.traces import Span, span_tree
from tests.e2e.local.conftest import SAMPLES
from tests.harness.debian import debian_tool
from tests.harness.http import HTTP
from tests.harness.local_mesh import LocalMesh, reviews_version
from tests.harness.ports import free_port
from tests.harness.processes import ProcessGroup
from tests.harness.waiting import NotReady, wait_until

pytestmark = pytest.mark.e2e


def requests_to(mesh: LocalMesh, **labels: str) -> float:
    text = HTTP.get(f"{mesh.state().telemetry}/metrics", timeout=5).text
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == "istio_requests_total" and all(sample.labels.get(k) == v for k, v in labels.items()))


def test_page_views_are_counted_on_each_hop(bookinfo: LocalMesh) -> None:
    into_productpage = {"reporter": "destination", "destination_workload": "productpage-v1",
                        "source_workload": "istio-ingressgateway", "response_code": "200"}
    to_details = {"reporter": "destination", "source_workload": "productpage-v1", "destination_workload": "details-v1"}
    before = requests_to(bookinfo, **into_productpage), requests_to(bookinfo, **to_details)
    for _ in range(5):
        assert bookinfo.productpage()[0] == 200
    wait_until(lambda: (requests_to(bookinfo, **into_productpage), requests_to(bookinfo, **to_details))
               == (before[0] + 5, before[1] + 5), timeout=15, what="5 more requests on each hop")


def test_one_page_one_trace_every_hop_nested(bookinfo: LocalMesh) -> None:
    bookinfo.apply(SAMPLES / "virtual-service-reviews-v3.yaml")  # v3 calls ratings
    trace_id = "463ac35c9f6413ad48485a3953bb6124"
    status, page = bookinfo.productpage(**{"x-b3-traceid": trace_id, "x-b3-spanid": "a2fb4a1d1a96d312",
                                           "x-b3-sampled": "1"})
    assert status == 200
    # A hop that failed leaves its span out of the trace for a reason tracing does not own.
    failed = [message for message in (DETAILS_ERROR, REVIEWS_ERROR, RATINGS_UNAVAILABLE) if message in page]
    assert not failed and reviews_version(page) == "v3", f"a hop failed: {failed or reviews_version(page)}"
    zipkin = bookinfo.state().zipkin

    # Every hop's spans, both sides where the chain of parents runs through them.  Each
    # Envoy reports its spans in its own batches, and a server span ends after the client
    # spans it caused, so a trace holding some span of every service can still lack one.
    every_hop = {("istio-ingressgateway.istio-system", "CLIENT"), ("productpage.default", "SERVER"),
                 ("productpage.default", "CLIENT"), ("details.default", "SERVER"), ("reviews.default", "SERVER"),
                 ("reviews.default", "CLIENT"), ("ratings.default", "SERVER")}
    seen: set[tuple[str | None, str | None]] = set()

    def spans() -> list[Span] | None:
        answer = HTTP.get(f"{zipkin}/api/v2/trace/{trace_id}", timeout=5)
        if answer.status_code != 200:
            return None
        found = [Span.from_json(span) for span in answer.json()]
        seen.update((s.local_service_name, s.kind) for s in found)
        return found if every_hop <= seen else None

    try:
        found = wait_until(spans, timeout=20, what="the page's trace with every hop")
    except NotReady as exc:
        raise AssertionError(f"{exc}; spans came from {sorted(map(str, seen))}") from exc
    tree = span_tree(found)
    depth = {(span.local_service_name, span.kind): level for level, span in tree}
    # The gateway calls productpage, which calls details and reviews, which calls ratings:
    # each server side is its caller's child.
    assert depth[("istio-ingressgateway.istio-system", "CLIENT")] < depth[("productpage.default", "SERVER")]
    assert depth[("productpage.default", "SERVER")] < depth[("productpage.default", "CLIENT")]
    assert depth[("productpage.default", "CLIENT")] < depth[("details.default", "SERVER")]
    assert depth[("details.default", "SERVER")] == depth[("reviews.default", "SERVER")]
    assert depth[("reviews.default", "SERVER")] < depth[("ratings.default", "SERVER")]
    assert {span.trace_id for span in found} == {trace_id}


@pytest.fixture
def prometheus(local_mesh: LocalMesh, tmp_path: Path) -> Iterator[str]:
    """A real Prometheus (Debian's) scraping telemetry every second."""
    binary = debian_tool("prometheus", "prometheus")
    target = local_mesh.state().telemetry.removeprefix("http://")
    (tmp_path / "prometheus.yml").write_text(f"""\
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
- job_name: istio-mesh
  static_configs: [{{targets: ["{target}"]}}]
""")
    port = free_port()
    group = ProcessGroup(tmp_path)
    group.start("prometheus", [binary, f"--config.file={tmp_path / 'prometheus.yml'}",
                               f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"])
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: HTTP.get(f"{url}/-/ready", timeout=2).status_code == 200, timeout=60,
                   what="prometheus ready")
        yield url
    finally:
        group.stop_all()


def test_prometheus_answers_promql_for_bookinfos_request_rate(bookinfo: LocalMesh, prometheus: str) -> None:
    def query(promql: str) -> float | None:
        answer = HTTP.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=5).json()
        results = answer.get("data", {}).get("result", [])
        return float(results[0]["value"][1]) if results else None

    def rate() -> float | None:
        assert bookinfo.productpage()[0] == 200
        value = query('sum(rate(istio_requests_total{reporter="destination",destination_app="productpage"}[15s]))')
        return value if value else None

    assert wait_until(rate, timeout=60, what="Prometheus to see productpage's request rate") > 0
    # Every Bookinfo service is there, under Istio's names.
    services = query('count(count by (destination_service_name) (istio_requests_total{reporter="destination"}))')
    assert services is not None and services >= 3


def has_edge(page: str, source: str, destination: str) -> bool:
    """An element of the drawn page carrying both ends of an edge, in either attribute order."""
    for element in re.findall(r"<[^>]*data-source=[^>]*>", page):
        if f'data-source="{source}"' in element and f'data-destination="{destination}"' in element:
            return True
    return False


def test_the_service_graph_in_a_real_browser(bookinfo: LocalMesh, tmp_path: Path) -> None:
    browser = debian_tool("chromium", "chromium")
    for _ in range(5):
        assert bookinfo.productpage()[0] == 200
    url = f"{bookinfo.state().telemetry}/graph"

    def dom() -> str | None:
        profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp_path)
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}"]
        page = subprocess.run([browser, *flags, "--virtual-time-budget=5000", "--dump-dom", url],
                              capture_output=True, text=True, timeout=60, check=False).stdout
        subprocess.run([browser, *flags, "--virtual-time-budget=5000", f"--screenshot={tmp_path / 'graph.png'}",
                        "--window-size=1400,900", url], capture_output=True, timeout=60, check=False)
        needed = (("istio-ingressgateway.istio-system", "productpage-v1.default"),
                  ("productpage-v1.default", "details-v1.default"))
        return page if all(has_edge(page, *edge) for edge in needed) else None

    page = wait_until(dom, timeout=60, what="the graph page to draw Bookinfo's edges")
    assert 'data-mtls="true"' in page
    assert (tmp_path / "graph.png").exists()
