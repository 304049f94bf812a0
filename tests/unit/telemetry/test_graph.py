"""The service graph: `graph_document` over a Bookinfo-like mesh, the `/graph` and `/graph.json` router, and
(where Debian's chromium is installed) the page rendering that document in a headless browser."""

from __future__ import annotations

import json
import math
import random
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from services.telemetry.graph import Edge, Node, graph_document, graph_router
from tests.harness.debian import debian_tool

NOW = 1_700_000_000.5
WINDOW_S = 60.0

UNKNOWN = Node("unknown", "unknown")
INGRESS = Node("istio-ingressgateway", "istio-system", "istio-ingressgateway")
PRODUCTPAGE = Node("productpage-v1", "default", "productpage", "v1")
DETAILS = Node("details-v1", "default", "details", "v1")
REVIEWS_V1 = Node("reviews-v1", "default", "reviews", "v1")
REVIEWS_V2 = Node("reviews-v2", "default", "reviews", "v2")
REVIEWS_V3 = Node("reviews-v3", "default", "reviews", "v3")
RATINGS = Node("ratings-v1", "default", "ratings", "v1")
MONGODB = Node("mongodb", "default")  # no app label: the node is named after its workload


def svc(name: str) -> str:
    return f"{name}.default.svc.cluster.local"


def http(source: Node, destination: Node, service: str, rate: float, errors: float = 0.0,
         p99: float | None = 4.0, mtls: bool = True) -> Edge:
    return Edge(source, destination, svc(service), "http", rate, errors, p99, mtls)


def bookinfo() -> list[Edge]:
    return [
        http(INGRESS, PRODUCTPAGE, "productpage", 12.34, p99=4.0),
        http(UNKNOWN, PRODUCTPAGE, "productpage", 0.2, p99=7.25, mtls=False),
        http(PRODUCTPAGE, DETAILS, "details", 12.3, p99=2.5),
        # Traffic was shifted away from v1 within the window: still an edge, at zero rate.
        http(PRODUCTPAGE, REVIEWS_V1, "reviews", 0.0, p99=None),
        http(PRODUCTPAGE, REVIEWS_V2, "reviews", 6.2, p99=12.6),
        http(PRODUCTPAGE, REVIEWS_V3, "reviews", 6.1, errors=0.05, p99=38.4),
        http(REVIEWS_V2, RATINGS, "ratings", 6.2, p99=1.0),
        http(REVIEWS_V3, RATINGS, "ratings", 5.8, errors=0.0004, p99=1.04),
        Edge(RATINGS, MONGODB, svc("mongodb"), "tcp", 0.5, 0.0, None, True, bytes_rate=12_100.0),
    ]


def document() -> dict:
    return graph_document(bookinfo(), window_s=WINDOW_S, generated_at=NOW)


# -- graph_document -----------------------------------------------------------------------


def test_nodes_are_the_edge_ends_with_stable_sorted_ids() -> None:
    doc = document()
    ids = [node["id"] for node in doc["nodes"]]
    assert ids == [
        "details-v1.default",
        "istio-ingressgateway.istio-system",
        "mongodb.default",
        "productpage-v1.default",
        "ratings-v1.default",
        "reviews-v1.default",
        "reviews-v2.default",
        "reviews-v3.default",
        "unknown.unknown",
    ]
    assert doc["generated_at"] == NOW
    assert doc["window_s"] == WINDOW_S


def test_node_labels_and_fields() -> None:
    nodes = {node["id"]: node for node in document()["nodes"]}
    assert nodes["reviews-v2.default"] == {
        "id": "reviews-v2.default",
        "workload": "reviews-v2",
        "namespace": "default",
        "app": "reviews",
        "version": "v2",
        "label": "reviews v2",
    }
    assert nodes["istio-ingressgateway.istio-system"]["label"] == "istio-ingressgateway"  # app, no version
    assert nodes["mongodb.default"]["label"] == "mongodb"  # no app label: the workload
    assert nodes["unknown.unknown"]["label"] == "unknown"


def test_edges_reference_node_ids_and_are_sorted() -> None:
    doc = document()
    ids = {node["id"] for node in doc["nodes"]}
    keys = [(e["source"], e["destination"], e["service"], e["protocol"]) for e in doc["edges"]]
    assert keys == sorted(keys)
    assert len(keys) == len(bookinfo())
    assert all(e["source"] in ids and e["destination"] in ids for e in doc["edges"])
    first = doc["edges"][0]
    assert set(first) == {"source", "destination", "service", "protocol", "request_rate", "error_rate", "p99_ms",
                          "mtls", "bytes_rate", "label"}


def test_document_does_not_depend_on_input_order() -> None:
    shuffled = bookinfo()
    random.Random(7).shuffle(shuffled)
    assert graph_document(shuffled, window_s=WINDOW_S, generated_at=NOW) == document()


def edge(doc: dict, source: str, destination: str) -> dict:
    (found,) = [e for e in doc["edges"] if e["source"] == source and e["destination"] == destination]
    return found


def test_edge_labels() -> None:
    doc = document()
    assert edge(doc, "istio-ingressgateway.istio-system", "productpage-v1.default")["label"] == (
        "12.3 rps · 0.0% errors · p99 4 ms")
    assert edge(doc, "productpage-v1.default", "details-v1.default")["label"] == "12.3 rps · 0.0% errors · p99 2.5 ms"
    assert edge(doc, "productpage-v1.default", "reviews-v3.default")["label"] == "6.1 rps · 5.0% errors · p99 38 ms"
    # A small error rate still reads as errors, and small rates as traffic.
    assert edge(doc, "reviews-v3.default", "ratings-v1.default")["label"] == "5.8 rps · <0.1% errors · p99 1 ms"
    assert edge(doc, "unknown.unknown", "productpage-v1.default")["label"] == "0.2 rps · 0.0% errors · p99 7.2 ms"
    # p99 unknown: left out rather than shown as 0.
    assert edge(doc, "productpage-v1.default", "reviews-v1.default")["label"] == "0.0 rps · 0.0% errors"
    assert edge(doc, "ratings-v1.default", "mongodb.default")["label"] == "0.5 conn/s · 12.1 KB/s"


def test_edge_fields() -> None:
    doc = document()
    reviews_v3 = edge(doc, "productpage-v1.default", "reviews-v3.default")
    assert reviews_v3 == {
        "source": "productpage-v1.default",
        "destination": "reviews-v3.default",
        "service": "reviews.default.svc.cluster.local",
        "protocol": "http",
        "request_rate": 6.1,
        "error_rate": 0.05,
        "p99_ms": 38.4,
        "mtls": True,
        "bytes_rate": 0.0,
        "label": "6.1 rps · 5.0% errors · p99 38 ms",
    }
    tcp = edge(doc, "ratings-v1.default", "mongodb.default")
    assert (tcp["protocol"], tcp["p99_ms"], tcp["error_rate"], tcp["bytes_rate"]) == ("tcp", None, 0.0, 12_100.0)
    assert edge(doc, "unknown.unknown", "productpage-v1.default")["mtls"] is False


def test_zero_rate_edges_are_kept_and_no_edges_make_an_empty_graph() -> None:
    idle = edge(document(), "productpage-v1.default", "reviews-v1.default")
    assert idle["request_rate"] == 0.0
    assert graph_document([], window_s=WINDOW_S, generated_at=NOW) == {
        "generated_at": NOW, "window_s": WINDOW_S, "nodes": [], "edges": []}


@pytest.mark.parametrize(("rate", "text"), [(0.004, "<0.01"), (0.05, "0.05"), (1234.56, "1234.6")])
def test_rate_precision(rate: float, text: str) -> None:
    doc = graph_document([http(PRODUCTPAGE, DETAILS, "details", rate, p99=None)], window_s=1, generated_at=NOW)
    assert doc["edges"][0]["label"] == f"{text} rps · 0.0% errors"


@pytest.mark.parametrize(("per_s", "text"), [(0.0, "0 B/s"), (999.0, "999 B/s"), (2_500_000.0, "2.5 MB/s"),
                                             (3e9, "3.0 GB/s")])
def test_tcp_byte_units(per_s: float, text: str) -> None:
    tcp = Edge(RATINGS, MONGODB, svc("mongodb"), "tcp", 1.0, 0.0, None, False, bytes_rate=per_s)
    assert graph_document([tcp], window_s=1, generated_at=NOW)["edges"][0]["label"] == f"1.0 conn/s · {text}"


def test_non_finite_numbers_become_json_safe() -> None:
    # 0/0 in a rate query is NaN; JSON cannot carry it and Starlette refuses to encode it.
    broken = http(PRODUCTPAGE, DETAILS, "details", math.nan, errors=math.nan, p99=math.inf)
    doc = graph_document([broken], window_s=1, generated_at=NOW)
    json.dumps(doc, allow_nan=False)
    (only,) = doc["edges"]
    assert (only["request_rate"], only["error_rate"], only["p99_ms"]) == (0.0, 0.0, None)
    assert only["label"] == "0.0 rps · 0.0% errors"


def test_a_node_seen_with_and_without_labels_keeps_them() -> None:
    bare = Node("reviews-v2", "default")
    edges = [http(PRODUCTPAGE, bare, "reviews", 1.0), http(REVIEWS_V2, RATINGS, "ratings", 1.0)]
    nodes = {n["id"]: n for n in graph_document(edges, window_s=1, generated_at=NOW)["nodes"]}
    assert nodes["reviews-v2.default"]["label"] == "reviews v2"


# -- the router ---------------------------------------------------------------------------


def app_for(edges: list[Edge]) -> FastAPI:
    app = FastAPI()
    app.include_router(graph_router(lambda: list(edges), window_s=WINDOW_S, clock=lambda: NOW))
    return app


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def test_graph_json_serves_the_document_uncached() -> None:
    edges = bookinfo()
    async with client_for(app_for(edges)) as client:
        response = await client.get("/graph.json")
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["content-type"].startswith("application/json")
        assert response.json() == document()
        # Each request asks for the edges anew.
        edges.clear()
        assert (await client.get("/graph.json")).json()["edges"] == []


async def test_graph_serves_the_page_with_its_test_hooks() -> None:
    async with client_for(app_for(bookinfo())) as client:
        response = await client.get("/graph")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    for hook in ('"data-node"', '"data-source"', '"data-destination"', '"data-mtls"', "document.body.dataset.updated",
                 'id="status"'):
        assert hook in page
    # Relative, so the page works behind a path prefix.
    assert 'fetch("graph.json"' in page


async def test_page_loads_nothing_from_the_network() -> None:
    async with client_for(app_for([])) as client:
        response = await client.get("/graph")
    page = response.text
    # The SVG namespace is a name, not a fetch; anything else absolute would be one.
    assert set(re.findall(r"https?://[^\s\"'<>)]+", page)) <= {"http://www.w3.org/2000/svg"}
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=|@import|url\((?!#)", page)
    assert "connect-src 'self'" in response.headers["content-security-policy"]


# -- a real server, and the page in a browser ---------------------------------------------


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """uvicorn on a free loopback port in a background thread; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", ws="none",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, name="graph-uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped before it started"
            assert time.monotonic() < deadline, "uvicorn did not start within 15 s"
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        assert not thread.is_alive(), "uvicorn did not stop"


def test_real_server_answers_graph_json() -> None:
    with serving(app_for(bookinfo())) as base, httpx.Client(base_url=base) as client:
        response = client.get("/graph.json")
    assert response.status_code == 200
    assert response.json() == document()


def test_page_renders_the_graph_in_headless_chromium(tmp_path: Path) -> None:
    browser = debian_tool("chromium", "chromium")
    edges = bookinfo()
    with serving(app_for(edges)) as base:
        result = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path}",
             "--virtual-time-budget=5000", "--dump-dom", f"{base}/graph"],
            capture_output=True, text=True, timeout=90, check=False,
        )
    assert result.returncode == 0, result.stderr[-4000:]
    dom = result.stdout
    assert f'data-updated="{NOW}"' in dom, dom[:4000]
    assert re.search(r'<span id="status"[^>]*>updated ', dom), "the status line does not say updated"
    for node in document()["nodes"]:
        assert f'data-node="{node["id"]}"' in dom
    assert dom.count("data-source=") == len(edges)
    assert 'data-source="istio-ingressgateway.istio-system" data-destination="productpage-v1.default"' in dom
    assert dom.count('data-mtls="true"') == sum(e.mtls for e in edges)
    assert dom.count('class="lock"') == sum(e.mtls for e in edges)
    assert re.search(r'class="edge error"[^>]*data-destination="reviews-v3.default"', dom)
