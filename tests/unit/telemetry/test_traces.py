"""Telemetry's traces: Zipkin v2 JSON in, as Envoy posts it; Zipkin's query API out; the span tree."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.telemetry.traces import (
    QueryError,
    Span,
    SpanError,
    SpanStore,
    span_tree,
    zipkin_router,
)

NOW_S = 1_767_225_600.0  # 2026-01-01T00:00:00Z: the store's clock in these tests
NOW_US = int(NOW_S * 1_000_000)
MS = 1_000  # microseconds

# Mizzen's pilot asks Envoy for 128-bit trace ids (trace_id_128bit) and separate server spans (no shared context).
TRACE = "5af7183fb1d4cf5f80e55e6d1a2c4b3e"
GATEWAY, PRODUCTPAGE, REVIEWS, RATINGS, DETAILS = (
    "istio-ingressgateway.istio-system", "productpage.default", "reviews.default", "ratings.default",
    "details.default")
IPS = {GATEWAY: "127.0.20.1", PRODUCTPAGE: "127.0.30.1", REVIEWS: "127.0.30.2", RATINGS: "127.0.30.3",
       DETAILS: "127.0.30.4"}


def envoy_span(trace_id: str, span_id: str, *, kind: str, service: str, name: str, start_ms: float,
               duration_ms: float, parent_id: str | None = None, shared: bool = False, status: str = "200",
               upstream_cluster: str = "inbound|9080||") -> dict[str, Any]:
    """One span as Envoy's JsonV2Serializer writes it (source/extensions/tracers/zipkin/span_buffer.cc): the
    kind and local endpoint from the CS/SR annotation, Envoy's standard tags, `shared` only when true."""
    span: dict[str, Any] = {
        "traceId": trace_id,
        "id": span_id,
        "kind": kind,
        "name": name,
        "timestamp": NOW_US + int(start_ms * MS),
        "duration": int(duration_ms * MS),
        "localEndpoint": {"ipv4": IPS.get(service, "127.0.0.1"), "port": 15006 if kind == "SERVER" else 15001,
                          "serviceName": service},
        "tags": {
            "component": "proxy",
            "node_id": f"sidecar~{IPS.get(service, '127.0.0.1')}~{service}~default.svc.cluster.local",
            "guid:x-request-id": "6b1c3c5e-0f2a-4d38-9f1e-2a9d5c0e7b11",
            "http.url": f"http://{name.partition('.')[0]}:9080/productpage",
            "http.method": "GET",
            "http.protocol": "HTTP/1.1",
            "http.status_code": status,
            "upstream_cluster": upstream_cluster,
            "upstream_cluster.name": upstream_cluster,
            "response_flags": "-",
            "response_size": "1024",
            "request_size": "0",
            "downstream_cluster": "-",
            "user_agent": "curl/8.5.0",
            "peer.address": "127.0.0.1",
            "zone": "",
        },
    }
    if parent_id is not None:
        span["parentId"] = parent_id
    if shared:
        span["shared"] = True
    if status.startswith("5"):
        span["tags"]["error"] = "true"
    return span


def bookinfo_child_spans(trace_id: str = TRACE, *, start_ms: float = 0.0, ratings_status: str = "200",
                         ratings_ms: float = 4.0) -> list[dict[str, Any]]:
    """One /productpage request through the gateway, server spans children of client spans (Mizzen's config)."""
    host = "{}.default.svc.cluster.local:9080/*"
    return [
        envoy_span(trace_id, "a000000000000001", kind="CLIENT", service=GATEWAY, start_ms=start_ms, duration_ms=40,
                   name="productpage.default.svc.cluster.local:9080/productpage",
                   upstream_cluster="outbound|9080||productpage.default.svc.cluster.local"),
        envoy_span(trace_id, "b000000000000001", parent_id="a000000000000001", kind="SERVER", service=PRODUCTPAGE,
                   start_ms=start_ms + 1, duration_ms=38, name=host.format("productpage")),
        envoy_span(trace_id, "c000000000000001", parent_id="b000000000000001", kind="CLIENT", service=PRODUCTPAGE,
                   start_ms=start_ms + 2, duration_ms=5, name=host.format("details")),
        envoy_span(trace_id, "d000000000000001", parent_id="c000000000000001", kind="SERVER", service=DETAILS,
                   start_ms=start_ms + 3, duration_ms=3, name=host.format("details")),
        envoy_span(trace_id, "c000000000000002", parent_id="b000000000000001", kind="CLIENT", service=PRODUCTPAGE,
                   start_ms=start_ms + 8, duration_ms=25, name=host.format("reviews")),
        envoy_span(trace_id, "d000000000000002", parent_id="c000000000000002", kind="SERVER", service=REVIEWS,
                   start_ms=start_ms + 9, duration_ms=23, name=host.format("reviews")),
        envoy_span(trace_id, "e000000000000001", parent_id="d000000000000002", kind="CLIENT", service=REVIEWS,
                   start_ms=start_ms + 10, duration_ms=ratings_ms + 1, name=host.format("ratings"),
                   status=ratings_status),
        envoy_span(trace_id, "f000000000000001", parent_id="e000000000000001", kind="SERVER", service=RATINGS,
                   start_ms=start_ms + 11, duration_ms=ratings_ms, name=host.format("ratings"), status=ratings_status),
    ]


def bookinfo_shared_spans(trace_id: str = TRACE) -> list[dict[str, Any]]:
    """The same request with Envoy's default shared_span_context: each SERVER span reuses the id of the CLIENT span
    that called it, keeps that CLIENT's parent id, and says shared (B3's single-host-span model)."""
    host = "{}.default.svc.cluster.local:9080/*"
    gw, details, reviews, ratings = "a000000000000001", "c000000000000001", "c000000000000002", "e000000000000001"
    return [
        envoy_span(trace_id, gw, kind="CLIENT", service=GATEWAY, start_ms=0, duration_ms=40,
                   name="productpage.default.svc.cluster.local:9080/productpage"),
        envoy_span(trace_id, gw, kind="SERVER", service=PRODUCTPAGE, shared=True, start_ms=1, duration_ms=38,
                   name=host.format("productpage")),
        envoy_span(trace_id, details, parent_id=gw, kind="CLIENT", service=PRODUCTPAGE, start_ms=2, duration_ms=5,
                   name=host.format("details")),
        envoy_span(trace_id, details, parent_id=gw, kind="SERVER", service=DETAILS, shared=True, start_ms=3,
                   duration_ms=3, name=host.format("details")),
        envoy_span(trace_id, reviews, parent_id=gw, kind="CLIENT", service=PRODUCTPAGE, start_ms=8, duration_ms=25,
                   name=host.format("reviews")),
        envoy_span(trace_id, reviews, parent_id=gw, kind="SERVER", service=REVIEWS, shared=True, start_ms=9,
                   duration_ms=23, name=host.format("reviews")),
        envoy_span(trace_id, ratings, parent_id=reviews, kind="CLIENT", service=REVIEWS, start_ms=10, duration_ms=5,
                   name=host.format("ratings")),
        envoy_span(trace_id, ratings, parent_id=reviews, kind="SERVER", service=RATINGS, shared=True, start_ms=11,
                   duration_ms=4, name=host.format("ratings")),
    ]


def store_now(**settings: int) -> SpanStore:
    return SpanStore(clock=lambda: NOW_S, **settings)


def parsed(spans: list[dict[str, Any]]) -> list[Span]:
    return [Span.from_json(span, index) for index, span in enumerate(spans)]


@pytest.fixture
def store() -> SpanStore:
    return store_now()


async def client_for(store: SpanStore, **router_settings: int) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(zipkin_router(store, **router_settings))
    # starlette's TestClient warns about httpx (it wants httpx2) and warnings are errors here: ASGI transport it is.
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://telemetry:9411")


@pytest.fixture
async def client(store: SpanStore) -> AsyncIterator[httpx.AsyncClient]:
    async with await client_for(store) as http:
        yield http


async def post(client: httpx.AsyncClient, spans: Any, **headers: str) -> httpx.Response:
    return await client.post("/api/v2/spans", content=json.dumps(spans).encode(),
                             headers={"content-type": "application/json", **headers})


# -- ingestion ----------------------------------------------------------------------------


async def test_envoy_batch_is_accepted_and_read_back_in_zipkin_json(client: httpx.AsyncClient,
                                                                    store: SpanStore) -> None:
    spans = bookinfo_child_spans()
    response = await post(client, spans)
    assert response.status_code == 202
    assert response.content == b""
    assert (store.trace_count, store.span_count) == (1, 8)

    response = await client.get(f"/api/v2/trace/{TRACE}")
    assert response.status_code == 200
    body = response.json()
    assert [s["id"] for s in body] == [s["id"] for s in sorted(spans, key=lambda s: s["timestamp"])]
    # Zipkin's encoder: its field order, absent fields left out (the root has no parentId, no span says shared).
    assert list(body[0]) == ["traceId", "id", "kind", "name", "timestamp", "duration", "localEndpoint", "tags"]
    assert body[1] == {
        "traceId": TRACE, "parentId": "a000000000000001", "id": "b000000000000001", "kind": "SERVER",
        "name": "productpage.default.svc.cluster.local:9080/*", "timestamp": NOW_US + 1 * MS, "duration": 38 * MS,
        "localEndpoint": {"serviceName": PRODUCTPAGE, "ipv4": "127.0.30.1", "port": 15006},
        "tags": spans[1]["tags"],
    }


async def test_gzip_body_is_accepted(client: httpx.AsyncClient, store: SpanStore) -> None:
    body = gzip.compress(json.dumps(bookinfo_child_spans()).encode())
    response = await client.post("/api/v2/spans", content=body,
                                 headers={"content-type": "application/json", "content-encoding": "gzip"})
    assert response.status_code == 202
    assert store.span_count == 8


async def test_json_with_charset_and_without_content_type_is_accepted(client: httpx.AsyncClient,
                                                                      store: SpanStore) -> None:
    spans = bookinfo_child_spans()
    body = json.dumps(spans[:4]).encode()
    assert (await client.post("/api/v2/spans", content=body,
                              headers={"content-type": "application/json; charset=utf-8"})).status_code == 202
    # Zipkin reads a body without a content type as JSON.
    assert (await client.post("/api/v2/spans", content=json.dumps(spans[4:]).encode())).status_code == 202
    assert store.span_count == 8


async def test_empty_batch_is_accepted(client: httpx.AsyncClient, store: SpanStore) -> None:
    assert (await post(client, [])).status_code == 202
    assert store.trace_count == 0


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda s: s.pop("traceId"), "span[1].traceId: is required"),
    (lambda s: s.update(traceId="xyz0000000000001"), "span[1].traceId: 'xyz0000000000001' is not hex"),
    (lambda s: s.update(traceId="0" * 32), "span[1].traceId: is all zeros"),
    (lambda s: s.update(traceId="1" * 33), "span[1].traceId: '" + "1" * 33 + "' is longer than 32"),
    (lambda s: s.update(id="b0000000000000001"), "span[1].id: 'b0000000000000001' is longer than 16"),
    (lambda s: s.update(id=12), "span[1].id: must be a hex string, got a number"),
    (lambda s: s.update(parentId="parent"), "span[1].parentId: 'parent' is not hex"),
    (lambda s: s.update(kind="INTERNAL"), "span[1].kind: must be one of CLIENT, SERVER, PRODUCER, CONSUMER"),
    (lambda s: s.update(timestamp="1767225600000000"), "span[1].timestamp: must be an integer"),
    (lambda s: s.update(duration=-5), "span[1].duration: must not be negative"),
    (lambda s: s.update(shared="yes"), "span[1].shared: must be true or false"),
    (lambda s: s["localEndpoint"].update(port=70000), "span[1].localEndpoint.port: must be 0-65535"),
    (lambda s: s.update(localEndpoint="productpage"), "span[1].localEndpoint: must be an object"),
    (lambda s: s["tags"].update({"http.status_code": {"code": 200}}), "span[1].tags.http.status_code: must be a"),
    (lambda s: s.update(annotations=[{"timestamp": NOW_US}]), "span[1].annotations[0].value: is required"),
], ids=lambda v: v if isinstance(v, str) else "")
async def test_a_bad_span_refuses_the_whole_batch_naming_index_and_field(client: httpx.AsyncClient, store: SpanStore,
                                                                         mutate: Any, message: str) -> None:
    spans = bookinfo_child_spans()[:3]
    mutate(spans[1])
    response = await post(client, spans)
    assert response.status_code == 400
    assert response.text.startswith(message), response.text
    # Zipkin's rule: nothing of a refused batch is stored, not even the good spans before the bad one.
    assert (store.trace_count, store.span_count) == (0, 0)


@pytest.mark.parametrize(("content", "headers", "status", "message"), [
    (b'{"traceId": "1"}', {}, 400, "the body must be a JSON array of Zipkin v2 spans, got an object"),
    (b"[1]", {}, 400, "span[0].: a span must be a JSON object, got a number"),
    (b"[{", {}, 400, "the body is not JSON"),
    (b"", {}, 400, "the body is empty"),
    (b"\xff\xfe[", {}, 400, "the body is not"),
    (b"[]", {"content-type": "application/x-protobuf"}, 400, "content-type 'application/x-protobuf' is not supp"),
    (b"[]", {"content-encoding": "br"}, 400, "content-encoding 'br' is not supported"),
    (b"[]", {"content-encoding": "gzip"}, 400, "content-encoding gzip, but the body is not gzip"),
    (gzip.compress(b"[]" * 100, mtime=0)[:-12], {"content-encoding": "gzip"}, 400,
     "content-encoding gzip, but the gzip"),
])
async def test_bad_bodies_are_refused_with_400_naming_the_problem(client: httpx.AsyncClient, store: SpanStore,
                                                                  content: bytes, headers: dict[str, str],
                                                                  status: int, message: str) -> None:
    response = await client.post("/api/v2/spans", content=content,
                                 headers={"content-type": "application/json", **headers})
    assert response.status_code == status
    assert response.text.startswith(message), response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert store.span_count == 0


async def test_bodies_over_the_limit_are_refused_before_and_after_gunzip(store: SpanStore) -> None:
    async with await client_for(store, max_body_bytes=4096) as client:
        big = json.dumps(bookinfo_child_spans() * 4).encode()
        assert len(big) > 4096
        response = await client.post("/api/v2/spans", content=big, headers={"content-type": "application/json"})
        assert response.status_code == 413
        # Small on the wire, large inflated: the limit holds after decompression too.
        bomb = gzip.compress(b"[" + b" " * 100_000 + b"]")
        assert len(bomb) < 4096
        response = await client.post("/api/v2/spans", content=bomb,
                                     headers={"content-type": "application/json", "content-encoding": "gzip"})
        assert response.status_code == 413
        assert "decompressed" in response.text
    assert store.span_count == 0


# -- normalisation ------------------------------------------------------------------------


def test_ids_and_names_are_normalised_as_zipkin_does() -> None:
    raw = envoy_span(TRACE.upper(), "B00000000000000A", parent_id="00000000000000AB", kind="server",
                     service="ProductPage.Default", name="ProductPage.default.svc.cluster.local:9080/*",
                     start_ms=0, duration_ms=1)
    span = Span.from_json(raw)
    assert (span.trace_id, span.id, span.parent_id) == (TRACE, "b00000000000000a", "00000000000000ab")
    assert span.kind == "SERVER"
    assert span.local_service_name == "productpage.default"
    assert span.name == "productpage.default.svc.cluster.local:9080/*"


@pytest.mark.parametrize(("trace_id", "normalised"), [
    ("4d1e00c0db9010db86154a4ba6e91385", "4d1e00c0db9010db86154a4ba6e91385"),  # 128-bit: kept
    ("0000000000000000e55e6d1a2c4b3e01", "0000000000000000e55e6d1a2c4b3e01"),  # kept as given, too
    ("86154a4ba6e91385", "86154a4ba6e91385"),
    ("a6e91385", "00000000a6e91385"),  # short: left-padded to 16
    ("1" * 20, "0" * 12 + "1" * 20),  # between 16 and 32: left-padded to 32
])
def test_trace_ids_are_16_or_32_hex(trace_id: str, normalised: str) -> None:
    assert Span.from_json({"traceId": trace_id, "id": "1"}).trace_id == normalised


def test_absent_and_contradictory_fields_are_dropped_as_zipkin_does() -> None:
    span = Span.from_json({
        "traceId": "86154a4ba6e91385", "id": "86154a4ba6e91385", "parentId": "86154a4ba6e91385", "name": "",
        "kind": "CLIENT", "shared": True, "timestamp": 0, "duration": 0,
        # Envoy without a bound address wrote ipv4 "" and port 0; its numbers pass through protobuf doubles.
        "localEndpoint": {"serviceName": "Gateway", "ipv4": "", "port": 0},
        "remoteEndpoint": {"ipv4": "::ffff:10.1.2.3", "port": 9080.0},
        "tags": {"retries": 2, "sampled": True},
        "annotations": [{"timestamp": 2, "value": "b"}, {"timestamp": 1, "value": "a"},
                        {"timestamp": 2, "value": "b"}],
        "unknownField": {"ignored": True},
    })
    assert span.parent_id is None  # a span is not its own parent
    assert span.name is None and span.timestamp is None and span.duration is None
    assert span.shared is False  # shared belongs to the server half
    assert span.to_json() == {
        "traceId": "86154a4ba6e91385", "id": "86154a4ba6e91385", "kind": "CLIENT",
        "localEndpoint": {"serviceName": "gateway"},
        "remoteEndpoint": {"ipv4": "10.1.2.3", "port": 9080},
        "annotations": [{"timestamp": 1, "value": "a"}, {"timestamp": 2, "value": "b"}],
        "tags": {"retries": "2", "sampled": "true"},
    }
    assert Span.from_json({"traceId": "1", "id": "2", "parentId": "0000000000000000"}).parent_id is None
    assert Span.from_json({"traceId": "1", "id": "2", "localEndpoint": {}}).local_endpoint is None


def test_span_from_json_raises_span_error_with_index_and_field() -> None:
    with pytest.raises(SpanError) as caught:
        Span.from_json({"traceId": "1", "id": "2", "remoteEndpoint": {"port": "http"}}, index=7)
    assert isinstance(caught.value, ValueError)
    assert (caught.value.index, caught.value.field) == (7, "remoteEndpoint.port")
    assert str(caught.value) == "span[7].remoteEndpoint.port: must be an integer, got 'http'"


# -- store: dedupe, bounds ------------------------------------------------------------------


def test_resent_spans_are_deduplicated_and_shared_halves_kept_apart(store: SpanStore) -> None:
    batch = parsed(bookinfo_shared_spans())
    assert store.add(batch) == 8
    assert store.add(batch) == 8  # Envoy resent the batch: merged, not stored twice
    assert (store.trace_count, store.span_count) == (1, 8)
    spans = store.trace(TRACE)
    assert spans is not None and len(spans) == 8
    # The CLIENT and the shared SERVER half of one span id are two spans (two hosts' views), as in Zipkin.
    halves = [(s.kind, s.local_service_name) for s in spans if s.id == "c000000000000002"]
    assert halves == [("CLIENT", PRODUCTPAGE), ("SERVER", REVIEWS)]


def test_a_resent_span_fills_gaps_and_adds_tags(store: SpanStore) -> None:
    first = {"traceId": TRACE, "id": "b000000000000001", "kind": "SERVER", "timestamp": NOW_US,
             "localEndpoint": {"serviceName": PRODUCTPAGE}, "tags": {"http.method": "GET"}}
    second = {**first, "duration": 38 * MS, "name": "productpage", "timestamp": NOW_US + 5,
              "tags": {"http.status_code": "200"}}
    store.add(parsed([first]))
    store.add(parsed([second]))
    [span] = store.trace(TRACE) or []
    assert span.timestamp == NOW_US  # the first report stands
    assert span.duration == 38 * MS and span.name == "productpage"  # the second fills the gaps
    assert dict(span.tags) == {"http.method": "GET", "http.status_code": "200"}
    assert store.span_names(PRODUCTPAGE) == ["productpage"]


def test_the_least_recently_written_trace_is_evicted_when_full() -> None:
    store = store_now(max_traces=3)
    ids = [f"{n:032x}" for n in range(1, 5)]
    for trace_id in ids[:3]:
        store.add(parsed(bookinfo_child_spans(trace_id)[:2]))
    # Trace 1 gets a late span: now trace 2 is the least recently written.
    store.add(parsed(bookinfo_child_spans(ids[0])[2:3]))
    store.add(parsed(bookinfo_child_spans(ids[3])[:2]))
    assert store.trace_count == 3
    assert store.trace(ids[1]) is None
    assert all(store.trace(trace_id) is not None for trace_id in (ids[0], ids[2], ids[3]))
    assert store.span_count == 3 + 2 + 2
    assert store.evicted_traces == 1


def test_eviction_forgets_services_seen_only_in_evicted_traces() -> None:
    store = store_now(max_traces=1)
    store.add(parsed(bookinfo_child_spans("1" * 32)))
    assert store.services() == [DETAILS, GATEWAY, PRODUCTPAGE, RATINGS, REVIEWS]
    store.add(parsed(bookinfo_child_spans("2" * 32)[:2]))
    assert store.services() == [GATEWAY, PRODUCTPAGE]
    assert store.span_names(REVIEWS) == []
    assert (store.trace_count, store.span_count) == (1, 2)


def test_a_full_trace_drops_new_spans_but_still_merges_resent_ones() -> None:
    store = store_now(max_spans_per_trace=3)
    spans = parsed(bookinfo_child_spans())
    assert store.add(spans[:5]) == 3
    assert store.dropped_spans == 2
    assert store.add(spans[:1]) == 1  # a resend of a held span is no new span
    assert (store.span_count, store.dropped_spans) == (3, 2)


def test_store_settings_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SpanStore(max_traces=0)


# -- the query API ----------------------------------------------------------------------------


async def test_services_span_names_and_remote_services(client: httpx.AsyncClient) -> None:
    spans = bookinfo_child_spans()
    # Envoy sets no remote endpoint; other Zipkin clients (an app's own tracer) do.
    spans.append({"traceId": TRACE, "id": "9000000000000001", "parentId": "b000000000000001", "kind": "CLIENT",
                  "name": "SELECT", "timestamp": NOW_US + 30 * MS, "duration": 1 * MS,
                  "localEndpoint": {"serviceName": "ProductPage.Default"},
                  "remoteEndpoint": {"serviceName": "MySQL", "ipv4": "127.0.40.1", "port": 3306}})
    assert (await post(client, spans)).status_code == 202

    services = await client.get("/api/v2/services")
    assert services.json() == [DETAILS, GATEWAY, PRODUCTPAGE, RATINGS, REVIEWS]
    names = await client.get("/api/v2/spans", params={"serviceName": "productpage.default"})
    assert names.json() == ["details.default.svc.cluster.local:9080/*",
                            "productpage.default.svc.cluster.local:9080/*",
                            "reviews.default.svc.cluster.local:9080/*", "select"]
    # Service names in queries are lower-cased, as in Zipkin.
    assert (await client.get("/api/v2/spans", params={"serviceName": "Reviews.Default"})).json() == [
        "ratings.default.svc.cluster.local:9080/*", "reviews.default.svc.cluster.local:9080/*"]
    assert (await client.get("/api/v2/remoteServices", params={"serviceName": PRODUCTPAGE})).json() == ["mysql"]
    assert (await client.get("/api/v2/remoteServices", params={"serviceName": REVIEWS})).json() == []
    assert (await client.get("/api/v2/spans", params={"serviceName": "nobody"})).json() == []


@pytest.mark.parametrize("path", ["/api/v2/spans", "/api/v2/remoteServices"])
async def test_service_name_is_required(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert (response.status_code, response.text) == (400, "serviceName is required")


async def test_trace_by_id_normalises_and_404s(client: httpx.AsyncClient) -> None:
    await post(client, bookinfo_child_spans("00000000a6e91385"))
    assert len((await client.get("/api/v2/trace/A6E91385")).json()) == 8
    missing = await client.get(f"/api/v2/trace/{TRACE}")
    assert (missing.status_code, missing.text) == (404, f"trace {TRACE} not found")
    bad = await client.get("/api/v2/trace/not-a-trace")
    assert (bad.status_code, bad.text) == (400, "traceId: 'not-a-trace' is not hex")


async def fill_for_queries(client: httpx.AsyncClient) -> dict[str, str]:
    """Four traces, oldest first: two fine, one with a slow ratings call answering 500, one an hour ago."""
    traces = {"ok1": "1" * 32, "slow500": "2" * 32, "ok2": "3" * 32, "old": "4" * 32}
    batches = [
        bookinfo_child_spans(traces["ok1"], start_ms=-3_000),
        bookinfo_child_spans(traces["slow500"], start_ms=-2_000, ratings_status="503", ratings_ms=250),
        bookinfo_child_spans(traces["ok2"], start_ms=-1_000),
        bookinfo_child_spans(traces["old"], start_ms=-3_600_000),
    ]
    for batch in batches:
        assert (await post(client, batch)).status_code == 202
    return traces


def trace_ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [trace[0]["traceId"] for trace in response.json()]


async def test_traces_default_query_is_the_last_day_newest_first(client: httpx.AsyncClient) -> None:
    t = await fill_for_queries(client)
    response = await client.get("/api/v2/traces")
    assert trace_ids(response) == [t["ok2"], t["slow500"], t["ok1"], t["old"]]
    # Each trace comes whole, deduplicated, by timestamp.
    first = response.json()[0]
    assert len(first) == 8
    assert [s["timestamp"] for s in first] == sorted(s["timestamp"] for s in first)


async def test_traces_by_service_and_span_name(client: httpx.AsyncClient) -> None:
    t = await fill_for_queries(client)
    await post(client, [envoy_span("5" * 32, "a000000000000009", kind="CLIENT", service=GATEWAY, start_ms=-10,
                                   duration_ms=1, name="details.default.svc.cluster.local:9080/*")])
    assert trace_ids(await client.get("/api/v2/traces", params={"serviceName": "ratings.default"})) == [
        t["ok2"], t["slow500"], t["ok1"], t["old"]]
    assert trace_ids(await client.get("/api/v2/traces", params={"serviceName": "nobody"})) == []
    # With a service, the span name must be that service's: the gateway-only trace calls a span "details..." too.
    params = {"serviceName": DETAILS, "spanName": "details.default.svc.cluster.local:9080/*"}
    assert "5" * 32 not in trace_ids(await client.get("/api/v2/traces", params=params))
    params = {"spanName": "DETAILS.default.svc.cluster.local:9080/*"}
    assert trace_ids(await client.get("/api/v2/traces", params=params))[0] == "5" * 32
    assert len(trace_ids(await client.get("/api/v2/traces", params={"spanName": "all"}))) == 5


async def test_traces_by_duration(client: httpx.AsyncClient) -> None:
    t = await fill_for_queries(client)
    slow = {"serviceName": RATINGS, "minDuration": str(100 * MS)}
    assert trace_ids(await client.get("/api/v2/traces", params=slow)) == [t["slow500"]]
    between = {"serviceName": RATINGS, "minDuration": str(1 * MS), "maxDuration": str(10 * MS)}
    assert trace_ids(await client.get("/api/v2/traces", params=between)) == [t["ok2"], t["ok1"], t["old"]]
    # Without a service name any span may be the long one: the gateway's lasts 40 ms in every trace.
    assert len(trace_ids(await client.get("/api/v2/traces", params={"minDuration": str(40 * MS)}))) == 4


async def test_traces_by_annotation_query(client: httpx.AsyncClient) -> None:
    t = await fill_for_queries(client)
    for query in ("error", "http.status_code=503", "error and http.status_code=503 and http.method=GET"):
        assert trace_ids(await client.get("/api/v2/traces", params={"annotationQuery": query})) == [t["slow500"]]
    params = {"annotationQuery": "http.status_code=503", "serviceName": PRODUCTPAGE}
    assert trace_ids(await client.get("/api/v2/traces", params=params)) == []
    assert trace_ids(await client.get("/api/v2/traces", params={"annotationQuery": "http.status_code=418"})) == []


async def test_traces_window_and_limit(client: httpx.AsyncClient) -> None:
    t = await fill_for_queries(client)
    now_ms = int(NOW_S * 1000)
    params = {"endTs": str(now_ms), "lookback": str(60_000)}
    assert trace_ids(await client.get("/api/v2/traces", params=params)) == [t["ok2"], t["slow500"], t["ok1"]]
    params = {"endTs": str(now_ms - 1_500), "lookback": str(60_000)}
    assert trace_ids(await client.get("/api/v2/traces", params=params)) == [t["slow500"], t["ok1"]]
    # The window holds a trace by its root span's timestamp.
    params = {"endTs": str(now_ms - 3_600_000), "lookback": "1"}
    assert trace_ids(await client.get("/api/v2/traces", params=params)) == [t["old"]]
    assert trace_ids(await client.get("/api/v2/traces", params={"limit": "2"})) == [t["ok2"], t["slow500"]]


@pytest.mark.parametrize(("params", "message"), [
    ({"limit": "ten"}, "limit must be an integer, got 'ten'"),
    ({"limit": "0"}, "limit must be positive, got 0"),
    ({"lookback": "-1"}, "lookback must be positive (milliseconds), got -1"),
    ({"endTs": "0"}, "endTs must be positive (epoch milliseconds), got 0"),
    ({"minDuration": "1.5"}, "minDuration must be an integer, got '1.5'"),
    ({"maxDuration": "100"}, "maxDuration is only valid with minDuration"),
    ({"minDuration": "100", "maxDuration": "10"}, "maxDuration (10) is less than minDuration (100)"),
])
async def test_bad_trace_queries_are_400_naming_the_parameter(client: httpx.AsyncClient, params: dict[str, str],
                                                              message: str) -> None:
    response = await client.get("/api/v2/traces", params=params)
    assert (response.status_code, response.text) == (400, message)


def test_store_queries_raise_query_error() -> None:
    with pytest.raises(QueryError, match="traceId"):
        store_now().trace("zz")
    with pytest.raises(QueryError, match="limit"):
        store_now().traces(limit=0)


# -- the tree ---------------------------------------------------------------------------------


def tree(spans: list[Span]) -> list[tuple[int, str | None, str | None, str]]:
    return [(depth, s.kind, s.local_service_name, s.id) for depth, s in span_tree(spans)]


EXPECTED_CHILD_TREE = [
    (0, "CLIENT", GATEWAY, "a000000000000001"),
    (1, "SERVER", PRODUCTPAGE, "b000000000000001"),
    (2, "CLIENT", PRODUCTPAGE, "c000000000000001"),
    (3, "SERVER", DETAILS, "d000000000000001"),
    (2, "CLIENT", PRODUCTPAGE, "c000000000000002"),
    (3, "SERVER", REVIEWS, "d000000000000002"),
    (4, "CLIENT", REVIEWS, "e000000000000001"),
    (5, "SERVER", RATINGS, "f000000000000001"),
]


def test_tree_of_child_spans() -> None:
    spans = parsed(bookinfo_child_spans())
    assert tree(spans) == EXPECTED_CHILD_TREE
    assert tree(list(reversed(spans))) == EXPECTED_CHILD_TREE  # input order does not matter


def test_tree_of_shared_spans() -> None:
    spans = parsed(bookinfo_shared_spans())
    expected = [
        (0, "CLIENT", GATEWAY, "a000000000000001"),
        (1, "SERVER", PRODUCTPAGE, "a000000000000001"),  # shared: under the CLIENT half with its id
        # The parent id names both halves of a000...1: productpage's calls hang under productpage's SERVER half.
        (2, "CLIENT", PRODUCTPAGE, "c000000000000001"),
        (3, "SERVER", DETAILS, "c000000000000001"),
        (2, "CLIENT", PRODUCTPAGE, "c000000000000002"),
        (3, "SERVER", REVIEWS, "c000000000000002"),
        (4, "CLIENT", REVIEWS, "e000000000000001"),
        (5, "SERVER", RATINGS, "e000000000000001"),
    ]
    assert tree(spans) == expected
    assert tree(list(reversed(spans))) == expected


async def test_tree_of_a_stored_trace_read_over_http(client: httpx.AsyncClient) -> None:
    await post(client, bookinfo_child_spans())
    body = (await client.get(f"/api/v2/trace/{TRACE}")).json()
    assert tree(parsed(body)) == EXPECTED_CHILD_TREE


def test_tree_roots_orphans_and_cuts_cycles() -> None:
    spans = parsed([
        {"traceId": "1", "id": "a", "parentId": "b", "timestamp": 3},
        {"traceId": "1", "id": "b", "parentId": "a", "timestamp": 2},
        {"traceId": "1", "id": "c", "parentId": "ffff", "timestamp": 5},  # its parent never arrived
        {"traceId": "1", "id": "d", "parentId": "c", "timestamp": 6},
    ])
    assert [(depth, s.id[-1]) for depth, s in span_tree(spans)] == [(0, "c"), (1, "d"), (0, "b"), (1, "a")]
    assert span_tree([]) == []


def test_tree_hangs_a_span_under_the_shared_half_of_its_own_service() -> None:
    # An app's own tracer adds a local span (no kind) under the shared id: the gateway's belongs under the gateway's
    # CLIENT half, productpage's under productpage's SERVER half.
    gw = "a000000000000001"
    spans = parsed([
        *bookinfo_shared_spans()[:2],
        {"traceId": TRACE, "id": "1000000000000001", "parentId": gw, "name": "route",
         "timestamp": NOW_US + 500, "localEndpoint": {"serviceName": GATEWAY}},
        {"traceId": TRACE, "id": "1000000000000002", "parentId": gw, "name": "render",
         "timestamp": NOW_US + 1_500, "localEndpoint": {"serviceName": PRODUCTPAGE}},
    ])
    assert tree(spans) == [
        (0, "CLIENT", GATEWAY, gw),
        (1, None, GATEWAY, "1000000000000001"),
        (1, "SERVER", PRODUCTPAGE, gw),
        (2, None, PRODUCTPAGE, "1000000000000002"),
    ]
