"""The live service graph: Istio 1.0's `servicegraph` (Kiali's graph today) for Mizzen's telemetry service.

This module owns the shape of the graph, not the numbers in it. The telemetry service computes `Edge`s from
Istio's standard metrics (`istio_requests_total`, `istio_request_duration_milliseconds`,
`istio_tcp_connections_opened_total`, `istio_tcp_sent_bytes_total` / `istio_tcp_received_bytes_total`) over a
window and hands them to `graph_router` as a callable; from here they flow out two ways:

- `GET /graph.json`: `graph_document`, the nodes and edges with stable ids and display-ready labels;
- `GET /graph`: `graph.html` beside this module, a self-contained page (inline SVG, vanilla JavaScript, no
  network resources) that polls `graph.json` every 2 seconds and redraws the graph in a layered layout.

Node ids are `<workload>.<namespace>`: namespaces are DNS labels without dots, so the id splits back at its last
dot and two nodes never share one. Callers outside the mesh are the node `unknown.unknown`, as Istio reports them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse

TCP = "tcp"
# The page draws with inline script and style only and talks to its own origin only; saying so to the browser
# makes a stray external reference fail loudly in development instead of hanging on a machine without internet.
PAGE_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
            "img-src data:; base-uri 'none'; form-action 'none'")


@dataclass(frozen=True)
class Node:
    workload: str  # "unknown" when the caller is outside the mesh
    namespace: str  # "unknown" likewise
    app: str = ""
    version: str = ""

    @property
    def id(self) -> str:
        return f"{self.workload}.{self.namespace}"


@dataclass(frozen=True)
class Edge:
    source: Node
    destination: Node
    destination_service: str  # e.g. "reviews.default.svc.cluster.local"
    protocol: str  # "http", "grpc" or "tcp"
    request_rate: float  # requests per second over the window (tcp: connections opened per second)
    error_rate: float  # fraction 0..1 of requests answered 5xx (tcp: 0)
    p99_ms: float | None  # None for tcp or when unknown
    mtls: bool  # the destination side reported connection_security_policy mutual_tls
    bytes_rate: float = 0.0  # tcp: bytes per second both ways; http: 0


# -- labels -----------------------------------------------------------------------------


def node_label(node: Node) -> str:
    """`"<app> <version>"` as Kiali's versioned-app graph names a box; the workload when the pod has no app label."""
    if not node.app:
        return node.workload
    return f"{node.app} {node.version}".strip()


def _rate(value: float) -> str:
    # A trickle of traffic must not read as none: "0.0 rps" would hide the edge's only news.
    if 0 < value < 0.01:
        return "<0.01"
    return f"{value:.2f}" if 0 < value < 0.1 else f"{value:.1f}"


def _percent(fraction: float) -> str:
    percent = fraction * 100
    if 0 < percent < 0.1:
        return "<0.1%"
    return f"{percent:.1f}%"


def _ms(value: float) -> str:
    # Istio's duration buckets start at 0.5 ms, so one decimal below 10 ms is all the precision there is.
    if value >= 10:
        return f"{value:.0f}"
    return f"{value:.1f}".removesuffix(".0")


def _bytes(per_s: float) -> str:
    """SI units (1 KB = 1000 B), as Istio's dashboards print byte throughput."""
    for unit in ("B/s", "KB/s", "MB/s"):
        if per_s < 1000:
            return f"{per_s:.0f} {unit}" if unit == "B/s" else f"{per_s:.1f} {unit}"
        per_s /= 1000
    return f"{per_s:.1f} GB/s"


def edge_label(edge: Edge) -> str:
    """`"12.3 rps · 0.0% errors · p99 4 ms"`; tcp `"0.5 conn/s · 12.1 KB/s"`. Reads the sanitised fields."""
    if edge.protocol == TCP:
        return f"{_rate(edge.request_rate)} conn/s · {_bytes(edge.bytes_rate)}"
    parts = [f"{_rate(edge.request_rate)} rps", f"{_percent(edge.error_rate)} errors"]
    if edge.p99_ms is not None:
        parts.append(f"p99 {_ms(edge.p99_ms)} ms")
    return " · ".join(parts)


# -- the document -----------------------------------------------------------------------


def _finite(value: float, low: float = 0.0, high: float = math.inf) -> float:
    # Rates come from PromQL-style arithmetic where 0/0 is NaN; JSON has no NaN or infinity (Starlette refuses to
    # encode them), and a negative rate is a counter reset, not traffic.
    if not math.isfinite(value):
        return low
    return min(max(value, low), high)


def _sanitised(edge: Edge) -> Edge:
    p99 = edge.p99_ms if edge.p99_ms is not None and math.isfinite(edge.p99_ms) and edge.p99_ms >= 0 else None
    tcp = edge.protocol == TCP
    return Edge(
        source=edge.source,
        destination=edge.destination,
        destination_service=edge.destination_service,
        protocol=edge.protocol,
        request_rate=_finite(edge.request_rate),
        error_rate=0.0 if tcp else _finite(edge.error_rate, 0.0, 1.0),
        p99_ms=None if tcp else p99,
        mtls=edge.mtls,
        bytes_rate=_finite(edge.bytes_rate),
    )


def _merge(nodes: dict[str, Node], node: Node) -> None:
    """One node per id. Edges may disagree about its labels (a peer's metadata exchange failed on one side):
    a known label beats an empty one, and between two known ones the smaller wins, so the answer is stable."""
    seen = nodes.get(node.id)
    if seen is None:
        nodes[node.id] = node
        return
    app = min(filter(None, (seen.app, node.app)), default="")
    version = min(filter(None, (seen.version, node.version)), default="")
    nodes[node.id] = Node(node.workload, node.namespace, app, version)


def _edge_key(edge: Edge) -> tuple[str, str, str, str, float, float, float, float, bool]:
    # The rates close the key so that duplicates from the caller still sort the same way every time.
    p99 = -1.0 if edge.p99_ms is None else edge.p99_ms
    return (edge.source.id, edge.destination.id, edge.destination_service, edge.protocol,
            edge.request_rate, edge.error_rate, p99, edge.bytes_rate, edge.mtls)


def graph_document(edges: Iterable[Edge], *, window_s: float, generated_at: float) -> dict[str, Any]:
    """The graph as `/graph.json` serves it: nodes sorted by id, edges by (source, destination, service,
    protocol). Every edge passed in is kept, zero rates included (traffic was seen in the window but has
    stopped); nodes are exactly the ends of those edges."""
    clean = sorted((_sanitised(edge) for edge in edges), key=_edge_key)
    nodes: dict[str, Node] = {}
    for edge in clean:
        _merge(nodes, edge.source)
        _merge(nodes, edge.destination)
    return {
        "generated_at": generated_at,
        "window_s": window_s,
        "nodes": [
            {
                "id": node_id,
                "workload": node.workload,
                "namespace": node.namespace,
                "app": node.app,
                "version": node.version,
                "label": node_label(node),
            }
            for node_id, node in sorted(nodes.items())
        ],
        "edges": [
            {
                "source": edge.source.id,
                "destination": edge.destination.id,
                "service": edge.destination_service,
                "protocol": edge.protocol,
                "request_rate": edge.request_rate,
                "error_rate": edge.error_rate,
                "p99_ms": edge.p99_ms,
                "mtls": edge.mtls,
                "bytes_rate": edge.bytes_rate,
                "label": edge_label(edge),
            }
            for edge in clean
        ],
    }


# -- HTTP -------------------------------------------------------------------------------


def graph_page() -> str:
    """The page's HTML, shipped as package data beside this module."""
    return resources.files(__package__).joinpath("graph.html").read_text(encoding="utf-8")


def graph_router(edges: Callable[[], list[Edge]], *, window_s: float,
                 clock: Callable[[], float] = time.time) -> APIRouter:
    """`GET /graph` (the page) and `GET /graph.json` (the document of `edges()` now).

    `edges` is called on the event loop, not in a worker thread: the telemetry service updates its metrics
    there, and reading them from another thread would race those updates."""
    page = graph_page()  # read once: a missing file fails at startup, not on the first visit
    router = APIRouter()

    @router.get("/graph", response_class=HTMLResponse, include_in_schema=False)
    async def graph_html() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache", "Content-Security-Policy": PAGE_CSP})

    @router.get("/graph.json")
    async def graph_json() -> JSONResponse:
        document = graph_document(edges(), window_s=window_s, generated_at=clock())
        # no-store: the page polls every 2 s and a cached answer would freeze the graph.
        return JSONResponse(document, headers={"Cache-Control": "no-store"})

    return router
