"""Traces: the Zipkin collector and query API of Mizzen's telemetry service.

This module owns the spans from the moment they arrive until they are evicted. Every Envoy's
`envoy.tracers.zipkin` (`collector_endpoint_version: HTTP_JSON`, B3 propagation) posts Zipkin v2 JSON to
telemetry on port 9411; from there the flows go:

- `POST /api/v2/spans` -> `Span.from_json` (validate, normalise as Zipkin does) -> `SpanStore.add`;
- `SpanStore`, bounded and in memory, -> Zipkin's query API (`GET /api/v2/services`, `/spans`, `/remoteServices`,
  `/traces`, `/trace/{traceId}`), which a Zipkin or Jaeger UI and the tests read back;
- `span_tree` turns one trace's spans into a parent/child order for readers that assert nesting.

A batch is all or nothing, as in Zipkin: one bad span refuses the whole POST with 400 and a message naming the span
index and the field, and nothing of that batch is stored. A partial accept would leave a client unable to tell which
spans made it, and Envoy does not retry either way.

Refusals are exception classes (`TraceError` and its subclasses); `zipkin_router` maps them to HTTP codes in one
table, `STATUS`. Nothing here reads the environment or the clock at import time.
"""

from __future__ import annotations

import heapq
import ipaddress
import json
import time
import zlib
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute

KINDS = ("CLIENT", "SERVER", "PRODUCER", "CONSUMER")
MAX_TRACES = 20_000
MAX_SPANS_PER_TRACE = 1_000
DEFAULT_LOOKBACK_MS = 86_400_000
DEFAULT_LIMIT = 10
# Envoy flushes every few spans (runtime tracing.zipkin.min_flush_spans, 5), so a batch is a few KB; the bound
# applies before and after gzip, so a small compressed body cannot inflate into gigabytes.
MAX_BODY_BYTES = 8 * 1024 * 1024

_EMPTY_TAGS: Mapping[str, str] = MappingProxyType({})


# -- errors -----------------------------------------------------------------------------


class TraceError(Exception):
    """A refusal by the collector or the query API; `STATUS` in `zipkin_router` gives each its HTTP code."""


class SpanError(TraceError, ValueError):
    """A span in a POSTed batch is invalid. The message names the span's index in the batch and the field."""

    def __init__(self, index: int, field_path: str, reason: str) -> None:
        super().__init__(f"span[{index}].{field_path}: {reason}")
        self.index = index
        self.field = field_path
        self.reason = reason


class PayloadError(TraceError, ValueError):
    """The POST body is not a Zipkin v2 JSON list of spans (content type, encoding, JSON, shape)."""


class PayloadTooLarge(TraceError):
    """The POST body, before or after decompression, is over the collector's limit."""


class QueryError(TraceError, ValueError):
    """A query parameter is missing or invalid; the message names it as Zipkin's API spells it."""


class TraceNotFound(TraceError, LookupError):
    """No trace with that id is held (never received, or evicted)."""


# -- the span ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """A Zipkin endpoint. Service names are lower case; a port of 0 is absent, as in Zipkin."""

    service_name: str | None = None
    ipv4: str | None = None
    ipv6: str | None = None
    port: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.service_name is not None:
            out["serviceName"] = self.service_name
        if self.ipv4 is not None:
            out["ipv4"] = self.ipv4
        if self.ipv6 is not None:
            out["ipv6"] = self.ipv6
        if self.port is not None:
            out["port"] = self.port
        return out


@dataclass(frozen=True, order=True)
class Annotation:
    timestamp: int  # epoch microseconds
    value: str

    def to_json(self) -> dict[str, Any]:
        return {"timestamp": self.timestamp, "value": self.value}


@dataclass(frozen=True)
class Span:
    """One Zipkin v2 span (a single host's view of one operation), normalised as Zipkin's `Span.Builder` does.

    Attribute names are Python's; `from_json` and `to_json` speak Zipkin's camelCase. Ids are lower-case hex:
    `trace_id` 16 or 32 characters, `id` and `parent_id` 16. Times are epoch microseconds, durations microseconds.
    `tags` is read-only."""

    trace_id: str
    id: str
    parent_id: str | None = None
    name: str | None = None
    kind: str | None = None
    timestamp: int | None = None
    duration: int | None = None
    local_endpoint: Endpoint | None = None
    remote_endpoint: Endpoint | None = None
    tags: Mapping[str, str] = field(default_factory=lambda: _EMPTY_TAGS, hash=False)
    annotations: tuple[Annotation, ...] = ()
    shared: bool = False
    debug: bool = False

    @property
    def local_service_name(self) -> str | None:
        return self.local_endpoint.service_name if self.local_endpoint else None

    @property
    def remote_service_name(self) -> str | None:
        return self.remote_endpoint.service_name if self.remote_endpoint else None

    @classmethod
    def from_json(cls, value: Any, index: int = 0) -> Span:
        """Validate and normalise one span of a Zipkin v2 JSON body; `index` is its place in the batch, for errors.

        Zipkin's rules: ids are hex, lower-cased, left-padded with zeros (trace id to 16 or 32, span ids to 16);
        a 32-character trace id is kept as given; an all-zero trace or span id is refused, an all-zero parent id
        or one equal to the span's own id means "no parent"; names and service names are lower-cased; empty
        strings, a timestamp or duration of 0 and a port of 0 are absent; `shared` on a CLIENT span is dropped;
        an address that does not parse is dropped; unknown fields are ignored. Envoy writes numbers through a
        protobuf Struct (doubles), so integral floats are accepted where integers are expected."""
        if not isinstance(value, dict):
            raise SpanError(index, "", f"a span must be a JSON object, got {_type_name(value)}")
        trace_id = _trace_id(value.get("traceId"), index)
        span_id = _span_id(value.get("id"), index)
        parent_id = _parent_id(value.get("parentId"), index)
        if parent_id == span_id:
            parent_id = None
        kind = _kind(value.get("kind"), index)
        shared = _flag(value.get("shared"), index, "shared")
        return cls(
            trace_id=trace_id,
            id=span_id,
            parent_id=parent_id,
            name=_lower_name(value.get("name"), index, "name"),
            kind=kind,
            timestamp=_micros(value.get("timestamp"), index, "timestamp"),
            duration=_micros(value.get("duration"), index, "duration"),
            local_endpoint=_endpoint(value.get("localEndpoint"), index, "localEndpoint"),
            remote_endpoint=_endpoint(value.get("remoteEndpoint"), index, "remoteEndpoint"),
            tags=_tags(value.get("tags"), index),
            annotations=_annotations(value.get("annotations"), index),
            # Zipkin's rule: shared marks the server half of a shared span; on the client half it is a mistake.
            shared=shared and kind != "CLIENT",
            debug=_flag(value.get("debug"), index, "debug"),
        )

    def to_json(self) -> dict[str, Any]:
        """Zipkin v2 JSON in Zipkin's field order; absent fields, empty tags and annotations, and false flags are
        left out as Zipkin's encoder does."""
        out: dict[str, Any] = {"traceId": self.trace_id}
        if self.parent_id is not None:
            out["parentId"] = self.parent_id
        out["id"] = self.id
        if self.kind is not None:
            out["kind"] = self.kind
        if self.name is not None:
            out["name"] = self.name
        if self.timestamp is not None:
            out["timestamp"] = self.timestamp
        if self.duration is not None:
            out["duration"] = self.duration
        if self.local_endpoint is not None:
            out["localEndpoint"] = self.local_endpoint.to_json()
        if self.remote_endpoint is not None:
            out["remoteEndpoint"] = self.remote_endpoint.to_json()
        if self.annotations:
            out["annotations"] = [a.to_json() for a in self.annotations]
        if self.tags:
            out["tags"] = dict(self.tags)
        if self.debug:
            out["debug"] = True
        if self.shared:
            out["shared"] = True
        return out


def parse_spans(body: Any) -> list[Span]:
    """A decoded POST body (a JSON list) as spans; the first bad span raises `SpanError` and refuses them all."""
    if not isinstance(body, list):
        raise PayloadError(f"the body must be a JSON array of Zipkin v2 spans, got {_type_name(body)}")
    return [Span.from_json(item, index) for index, item in enumerate(body)]


def normalize_trace_id(value: str) -> str:
    """A trace id as the store keys it (lower-case hex, padded as Zipkin pads); `QueryError` when it is not one."""
    try:
        return _trace_id(value, 0)
    except SpanError as error:
        raise QueryError(f"traceId: {error.reason}") from None


# -- field parsers: each raises SpanError naming the field ---------------------------


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def _hex(value: Any, index: int, name: str, max_len: int) -> str | None:
    """Lower-case hex of 1..max_len characters; None for null or "" (absent); SpanError otherwise."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SpanError(index, name, f"must be a hex string, got {_type_name(value)}")
    text = value.lower()
    if len(text) > max_len:
        raise SpanError(index, name, f"{value!r} is longer than {max_len} hex characters")
    if any(c not in "0123456789abcdef" for c in text):
        raise SpanError(index, name, f"{value!r} is not hex")
    return text


def _trace_id(value: Any, index: int) -> str:
    text = _hex(value, index, "traceId", 32)
    if text is None:
        raise SpanError(index, "traceId", "is required")
    if text.strip("0") == "":
        raise SpanError(index, "traceId", "is all zeros")
    # Zipkin pads short ids rather than refusing them: some tracers drop leading zeros.
    return text.rjust(16 if len(text) <= 16 else 32, "0")


def _span_id(value: Any, index: int) -> str:
    text = _hex(value, index, "id", 16)
    if text is None:
        raise SpanError(index, "id", "is required")
    if text.strip("0") == "":
        raise SpanError(index, "id", "is all zeros")
    return text.rjust(16, "0")


def _parent_id(value: Any, index: int) -> str | None:
    text = _hex(value, index, "parentId", 16)
    # Some tracers write a zero parent id for a root span.
    if text is None or text.strip("0") == "":
        return None
    return text.rjust(16, "0")


def _kind(value: Any, index: int) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value.upper() not in KINDS:
        raise SpanError(index, "kind", f"must be one of {', '.join(KINDS)}, got {value!r}")
    return value.upper()


def _lower_name(value: Any, index: int, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SpanError(index, name, f"must be a string, got {_type_name(value)}")
    return value.lower()


def _integer(value: Any, index: int, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    # bool is an int in Python; true is not a timestamp.
    if not isinstance(value, int) or isinstance(value, bool):
        raise SpanError(index, name, f"must be an integer, got {value!r}")
    return value


def _micros(value: Any, index: int, name: str) -> int | None:
    number = _integer(value, index, name)
    if number is None or number == 0:
        return None
    if number < 0:
        raise SpanError(index, name, f"must not be negative, got {number}")
    return number


def _flag(value: Any, index: int, name: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise SpanError(index, name, f"must be true or false, got {value!r}")
    return value


def _endpoint(value: Any, index: int, name: str) -> Endpoint | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise SpanError(index, name, f"must be an object, got {_type_name(value)}")
    service = _lower_name(value.get("serviceName"), index, f"{name}.serviceName")
    port = _integer(value.get("port"), index, f"{name}.port")
    if port is not None and not 0 <= port <= 65535:
        raise SpanError(index, f"{name}.port", f"must be 0-65535, got {port}")
    ipv4: str | None = None
    ipv6: str | None = None
    for key in ("ipv4", "ipv6"):
        raw = value.get(key)
        if raw is not None and not isinstance(raw, str):
            raise SpanError(index, f"{name}.{key}", f"must be a string, got {_type_name(raw)}")
        address = _ip(raw)
        # Zipkin files an address by what it is, not by the field it came in (a mapped IPv4 is IPv4).
        if isinstance(address, ipaddress.IPv4Address):
            ipv4 = ipv4 or str(address)
        elif address is not None:
            ipv6 = ipv6 or str(address)
    endpoint = Endpoint(service, ipv4, ipv6, port or None)
    return None if endpoint == Endpoint() else endpoint


def _ip(raw: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not raw:
        return None
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        # Zipkin drops an address it cannot parse rather than the span: it is decoration, not identity.
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _tags(value: Any, index: int) -> Mapping[str, str]:
    if value is None:
        return _EMPTY_TAGS
    if not isinstance(value, dict):
        raise SpanError(index, "tags", f"must be an object of strings, got {_type_name(value)}")
    tags: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, str):
            tags[key] = item
        elif isinstance(item, bool):
            tags[key] = "true" if item else "false"
        elif isinstance(item, int | float):
            tags[key] = str(item)
        else:
            raise SpanError(index, f"tags.{key}", f"must be a string, got {_type_name(item)}")
    return MappingProxyType(tags) if tags else _EMPTY_TAGS


def _annotations(value: Any, index: int) -> tuple[Annotation, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise SpanError(index, "annotations", f"must be an array, got {_type_name(value)}")
    found: set[Annotation] = set()
    for position, item in enumerate(value):
        where = f"annotations[{position}]"
        if not isinstance(item, dict):
            raise SpanError(index, where, f"must be an object, got {_type_name(item)}")
        timestamp = _integer(item.get("timestamp"), index, f"{where}.timestamp")
        text = item.get("value")
        if timestamp is None or timestamp < 0:
            raise SpanError(index, f"{where}.timestamp", f"must be epoch microseconds, got {timestamp!r}")
        if not isinstance(text, str) or not text:
            raise SpanError(index, f"{where}.value", "is required (a non-empty string)")
        found.add(Annotation(timestamp, text))
    return tuple(sorted(found))


# -- the store --------------------------------------------------------------------------

SpanKey = tuple[str, str | None, str | None]  # (id, kind, local service name): one host's half of one span
_KIND_ORDER = {None: 0, "CLIENT": 1, "SERVER": 2, "PRODUCER": 3, "CONSUMER": 4}


def _span_order(span: Span) -> tuple[int, str, int, str]:
    return (span.timestamp or 0, span.id, _KIND_ORDER[span.kind], span.local_service_name or "")


def _merge(old: Span, new: Span) -> Span:
    """Two reports of one span (Envoy resends after a timeout): what the first said stands, the second fills gaps,
    as Zipkin's `Span.Builder.merge` does."""

    def merged_endpoint(a: Endpoint | None, b: Endpoint | None) -> Endpoint | None:
        if a is None or b is None:
            return a or b
        return Endpoint(a.service_name or b.service_name, a.ipv4 or b.ipv4, a.ipv6 or b.ipv6, a.port or b.port)

    return Span(
        trace_id=old.trace_id,
        id=old.id,
        parent_id=old.parent_id or new.parent_id,
        name=old.name or new.name,
        kind=old.kind,
        timestamp=old.timestamp or new.timestamp,
        duration=old.duration or new.duration,
        local_endpoint=merged_endpoint(old.local_endpoint, new.local_endpoint),
        remote_endpoint=merged_endpoint(old.remote_endpoint, new.remote_endpoint),
        tags=MappingProxyType({**old.tags, **new.tags}) if new.tags else old.tags,
        annotations=tuple(sorted(set(old.annotations) | set(new.annotations))),
        shared=old.shared or new.shared,
        debug=old.debug or new.debug,
    )


class _Trace:
    __slots__ = ("_timestamp", "spans")

    def __init__(self) -> None:
        self.spans: dict[SpanKey, Span] = {}
        self._timestamp: int | None = None

    def put(self, key: SpanKey, span: Span) -> None:
        self.spans[key] = span
        self._timestamp = None

    def timestamp(self) -> int | None:
        """Zipkin's trace timestamp: the root span's, else the earliest; None when no span has one."""
        if self._timestamp is None:
            roots = [s.timestamp for s in self.spans.values() if s.parent_id is None and s.timestamp]
            stamps = roots or [s.timestamp for s in self.spans.values() if s.timestamp]
            self._timestamp = min(stamps) if stamps else 0
        return self._timestamp or None

    def sorted_spans(self) -> list[Span]:
        return sorted(self.spans.values(), key=_span_order)


def parse_annotation_query(query: str | None) -> dict[str, str]:
    """Zipkin's annotationQuery: terms joined by " and ", each `key` (an annotation value or a tag key) or
    `key=value` (a tag); "" stands for "any value"."""
    terms: dict[str, str] = {}
    for term in (query or "").split(" and "):
        key, sep, value = term.partition("=")
        if key.strip():
            terms[key.strip()] = value.strip() if sep else ""
    return terms


@dataclass(frozen=True)
class _Criteria:
    service_name: str | None
    remote_service_name: str | None
    span_name: str | None
    min_duration_us: int | None
    max_duration_us: int | None
    annotations: Mapping[str, str]

    def test(self, spans: Iterable[Span]) -> bool:
        """Zipkin's QueryRequest.test: with a service name, only that service's spans count; each criterion may be
        met by a different span."""
        service_seen = self.service_name is None
        span_name = self.span_name
        remote = self.remote_service_name
        remaining = dict(self.annotations)
        duration_ok = self.min_duration_us is None
        for span in spans:
            if self.service_name is not None and span.local_service_name != self.service_name:
                continue
            service_seen = True
            if span_name is not None and span.name == span_name:
                span_name = None
            if remote is not None and span.remote_service_name == remote:
                remote = None
            for annotation in span.annotations:
                if remaining.get(annotation.value) == "":
                    del remaining[annotation.value]
            for key, value in span.tags.items():
                wanted = remaining.get(key)
                if wanted is not None and wanted in ("", value):
                    del remaining[key]
            if not duration_ok:
                duration_ok = self._lasts(span.duration)
        return service_seen and span_name is None and remote is None and not remaining and duration_ok

    def _lasts(self, duration: int | None) -> bool:
        if duration is None or self.min_duration_us is None or duration < self.min_duration_us:
            return False
        return self.max_duration_us is None or duration <= self.max_duration_us


class SpanStore:
    """The spans telemetry holds, by trace, in memory and bounded.

    At most `max_traces` traces: a new trace beyond that evicts the least recently written one (a trace still
    receiving spans stays). At most `max_spans_per_trace` spans per trace: further new spans of a full trace are
    dropped and counted in `dropped_spans` (a runaway trace must not crowd out the others); resent spans still merge.
    Spans are deduplicated on arrival by (id, kind, local service name), as Zipkin does, so Envoy's resends cost
    nothing and the CLIENT and SERVER halves of a shared span stay apart.

    Not thread-safe, and needs not be: telemetry calls it from its one event loop, and no method awaits.
    Queries over traces scan every held trace (20,000 by default): fine for a UI and for tests, not an index."""

    def __init__(self, *, max_traces: int = MAX_TRACES, max_spans_per_trace: int = MAX_SPANS_PER_TRACE,
                 clock: Callable[[], float] = time.time) -> None:
        if max_traces < 1 or max_spans_per_trace < 1:
            raise ValueError("max_traces and max_spans_per_trace must be at least 1")
        self.max_traces = max_traces
        self.max_spans_per_trace = max_spans_per_trace
        self._clock = clock
        # Insertion order is write order: every write moves its trace to the end, eviction pops the front.
        self._traces: OrderedDict[str, _Trace] = OrderedDict()
        self._span_count = 0
        self.dropped_spans = 0
        self.evicted_traces = 0
        # Reference counts, by span, behind services(), span_names() and remote_services(): those are what a UI
        # asks for on every page load, so they must not scan.
        self._services: Counter[str] = Counter()
        self._span_names: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._remote_services: defaultdict[str, Counter[str]] = defaultdict(Counter)

    @property
    def span_count(self) -> int:
        return self._span_count

    @property
    def trace_count(self) -> int:
        return len(self._traces)

    # -- writing

    def add(self, spans: Iterable[Span]) -> int:
        """Store `spans`; returns how many were stored or merged into a span already held (not the dropped)."""
        stored = 0
        for received in spans:
            trace = self._traces.get(received.trace_id)
            if trace is None:
                trace = self._traces[received.trace_id] = _Trace()
            else:
                self._traces.move_to_end(received.trace_id)
            key: SpanKey = (received.id, received.kind, received.local_service_name)
            old = trace.spans.get(key)
            if old is None and len(trace.spans) >= self.max_spans_per_trace:
                self.dropped_spans += 1
                continue
            if old is None:
                span = received
                self._span_count += 1
            else:
                self._index(old, -1)
                span = _merge(old, received)
            trace.put(key, span)
            self._index(span, +1)
            stored += 1
            while len(self._traces) > self.max_traces:
                self._evict()
        return stored

    def _evict(self) -> None:
        _, trace = self._traces.popitem(last=False)
        for span in trace.spans.values():
            self._index(span, -1)
        self._span_count -= len(trace.spans)
        self.evicted_traces += 1

    def _index(self, span: Span, delta: int) -> None:
        service = span.local_service_name
        if service is None:
            return
        _count(self._services, service, delta)
        if span.name is not None:
            _count(self._span_names[service], span.name, delta)
            if not self._span_names[service]:
                del self._span_names[service]
        if span.remote_service_name is not None:
            _count(self._remote_services[service], span.remote_service_name, delta)
            if not self._remote_services[service]:
                del self._remote_services[service]

    # -- reading

    def services(self) -> list[str]:
        """Local service names of the spans held, sorted."""
        return sorted(self._services)

    def span_names(self, service: str) -> list[str]:
        """Names of the spans `service` reported, sorted; [] for an unknown service."""
        names = self._span_names.get(service.lower())
        return sorted(names) if names else []

    def remote_services(self, service: str) -> list[str]:
        """Remote service names in the spans `service` reported, sorted; [] for an unknown service."""
        remote = self._remote_services.get(service.lower())
        return sorted(remote) if remote else []

    def trace(self, trace_id: str) -> list[Span] | None:
        """The spans of one trace, deduplicated, by timestamp; None when not held. `QueryError` for a bad id."""
        trace = self._traces.get(normalize_trace_id(trace_id))
        return trace.sorted_spans() if trace is not None else None

    def traces(self, service_name: str | None = None, span_name: str | None = None,
               min_duration_us: int | None = None, max_duration_us: int | None = None,
               end_ts_ms: int | None = None, lookback_ms: int = DEFAULT_LOOKBACK_MS, limit: int = DEFAULT_LIMIT,
               annotation_query: str | None = None, remote_service_name: str | None = None) -> list[list[Span]]:
        """Traces matching Zipkin's query semantics, newest first, at most `limit`.

        A trace is in the window when its timestamp (its root span's, else its earliest) is within
        [end_ts_ms - lookback_ms, end_ts_ms] (end_ts_ms defaults to now). It matches when, among its spans (only
        `service_name`'s when given), one has `span_name`, one has `remote_service_name`, one lasts between
        `min_duration_us` and `max_duration_us`, and every `annotation_query` term is met by an annotation or tag.
        `span_name` "all" means any, as in Zipkin. Invalid values raise `QueryError` naming Zipkin's parameter."""
        end_ts_ms = int(self._clock() * 1000) if end_ts_ms is None else end_ts_ms
        if end_ts_ms <= 0:
            raise QueryError(f"endTs must be positive (epoch milliseconds), got {end_ts_ms}")
        if lookback_ms <= 0:
            raise QueryError(f"lookback must be positive (milliseconds), got {lookback_ms}")
        if limit <= 0:
            raise QueryError(f"limit must be positive, got {limit}")
        if min_duration_us is not None and min_duration_us <= 0:
            raise QueryError(f"minDuration must be positive (microseconds), got {min_duration_us}")
        if max_duration_us is not None:
            if min_duration_us is None:
                raise QueryError("maxDuration is only valid with minDuration")
            if max_duration_us < min_duration_us:
                raise QueryError(f"maxDuration ({max_duration_us}) is less than minDuration ({min_duration_us})")
        criteria = _Criteria(
            service_name=service_name.lower() if service_name else None,
            remote_service_name=remote_service_name.lower() if remote_service_name else None,
            span_name=span_name.lower() if span_name and span_name != "all" else None,
            min_duration_us=min_duration_us,
            max_duration_us=max_duration_us,
            annotations=parse_annotation_query(annotation_query),
        )
        low, high = (end_ts_ms - lookback_ms) * 1000, end_ts_ms * 1000
        found: list[tuple[int, str, _Trace]] = []
        for trace_id, trace in self._traces.items():
            timestamp = trace.timestamp()
            if timestamp is None or not low <= timestamp <= high:
                continue
            if criteria.test(trace.spans.values()):
                found.append((timestamp, trace_id, trace))
        newest = heapq.nlargest(limit, found, key=lambda item: (item[0], item[1]))
        return [trace.sorted_spans() for _, _, trace in newest]


def _count(counter: Counter[str], key: str, delta: int) -> None:
    counter[key] += delta
    if counter[key] <= 0:
        del counter[key]


# -- the tree ---------------------------------------------------------------------------


def span_tree(spans: Iterable[Span]) -> list[tuple[int, Span]]:
    """One trace's spans as (depth, span), depth first: each span after its parent, siblings by timestamp.

    Envoy reports a hop in one of two shapes. With `shared_span_context` (B3's single-host-span model) the callee's
    SERVER span reuses the caller's CLIENT span id and inherits its parent id; it is placed as the child of that
    CLIENT span. Without it (Mizzen's pilot configures that, as Istio does) the SERVER span has its own id and the
    CLIENT's id as parent id. A span whose parent id names both halves of a shared span hangs under the half of its
    own service (the SERVER that received the call it is part of), else under the SERVER half. Spans whose parent
    is missing become roots; a cycle (bad data) is cut so that every span appears exactly once."""
    nodes = list(spans)
    by_id: defaultdict[str, list[int]] = defaultdict(list)
    for position, span in enumerate(nodes):
        by_id[span.id].append(position)

    def order(position: int) -> tuple[int, int, str, str, int]:
        span = nodes[position]
        return (span.timestamp or 0, _KIND_ORDER[span.kind], span.id, span.local_service_name or "", position)

    def parent_of(position: int) -> int | None:
        span = nodes[position]
        if span.kind == "SERVER":
            clients = [p for p in by_id[span.id] if p != position and nodes[p].kind == "CLIENT"]
            if clients:
                # The caller is another host: prefer a CLIENT half of another service.
                return min(clients, key=lambda p: (nodes[p].local_service_name == span.local_service_name, order(p)))
        if span.parent_id is None:
            return None
        candidates = [p for p in by_id.get(span.parent_id, []) if p != position]
        if not candidates:
            return None
        return min(candidates, key=lambda p: (nodes[p].local_service_name != span.local_service_name,
                                              nodes[p].kind != "SERVER", order(p)))

    parents = [parent_of(position) for position in range(len(nodes))]
    children: defaultdict[int | None, list[int]] = defaultdict(list)
    for position, parent in enumerate(parents):
        children[parent].append(position)
    for siblings in children.values():
        siblings.sort(key=order)

    out: list[tuple[int, Span]] = []
    placed: set[int] = set()

    def walk(root: int) -> None:
        stack = [(0, root)]
        while stack:
            depth, position = stack.pop()
            if position in placed:
                continue
            placed.add(position)
            out.append((depth, nodes[position]))
            stack.extend((depth + 1, child) for child in reversed(children[position]))

    for root in children[None]:
        walk(root)
    # Whatever is left hangs off a cycle: start from its earliest span, as if it were a root.
    while len(placed) < len(nodes):
        walk(min((p for p in range(len(nodes)) if p not in placed), key=order))
    return out


# -- HTTP -------------------------------------------------------------------------------

STATUS: dict[type[TraceError], int] = {
    SpanError: 400,
    PayloadError: 400,
    QueryError: 400,
    PayloadTooLarge: 413,
    TraceNotFound: 404,
}


def status_code(error: TraceError) -> int:
    for cls, code in STATUS.items():
        if isinstance(error, cls):
            return code
    return 400


class _ZipkinRoute(APIRoute):
    """Every route of the Zipkin API answers a `TraceError` with its `STATUS` code and the message as plain text,
    as Zipkin does; handlers only raise."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except TraceError as error:
                return PlainTextResponse(str(error), status_code=status_code(error))

        return handle


async def _read_body(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(body: bytes, content_type: str | None, content_encoding: str | None, limit: int) -> Any:
    media_type = (content_type or "").split(";")[0].strip().lower()
    # Zipkin reads a body without a content type as JSON; protobuf (Envoy's HTTP_PROTO) is not spoken here.
    if media_type not in ("", "application/json"):
        raise PayloadError(f"content-type {content_type!r} is not supported: send Zipkin v2 JSON as "
                           "application/json (Envoy: collector_endpoint_version HTTP_JSON)")
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "gzip":
        body = _gunzip(body, limit)
    elif encoding != "identity":
        raise PayloadError(f"content-encoding {content_encoding!r} is not supported (gzip or none)")
    if not body.strip():
        raise PayloadError("the body is empty: send a JSON array of Zipkin v2 spans")
    try:
        return json.loads(body)
    except UnicodeDecodeError as error:
        raise PayloadError(f"the body is not UTF-8: {error}") from None
    except json.JSONDecodeError as error:
        raise PayloadError(f"the body is not JSON: {error}") from None


def _gunzip(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as error:
        raise PayloadError(f"content-encoding gzip, but the body is not gzip: {error}") from None
    if len(out) > limit:
        raise PayloadTooLarge(f"request body over {limit} bytes once decompressed")
    if not inflater.eof:
        raise PayloadError("content-encoding gzip, but the gzip stream is truncated")
    return out


def _int_param(name: str, value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise QueryError(f"{name} must be an integer, got {value!r}") from None


def _required(name: str, value: str | None) -> str:
    if not value:
        raise QueryError(f"{name} is required")
    return value


def zipkin_router(store: SpanStore, *, max_body_bytes: int = MAX_BODY_BYTES) -> APIRouter:
    """Zipkin's v2 collector and query API over `store`, with Zipkin's paths, parameters and JSON shapes.

    Query parameters are read as strings and parsed here, so a bad one answers 400 naming it, as Zipkin does,
    rather than FastAPI's 422."""
    api = APIRouter(prefix="/api/v2", route_class=_ZipkinRoute)

    def spans_json(spans: list[Span]) -> list[dict[str, Any]]:
        return [span.to_json() for span in spans]

    @api.post("/spans", status_code=202)
    async def post_spans(request: Request) -> Response:
        body = await _read_body(request, max_body_bytes)
        decoded = _decode(body, request.headers.get("content-type"), request.headers.get("content-encoding"),
                          max_body_bytes)
        store.add(parse_spans(decoded))
        return Response(status_code=202)

    @api.get("/services")
    async def get_services() -> JSONResponse:
        return JSONResponse(store.services())

    @api.get("/spans")
    async def get_span_names(serviceName: str | None = None) -> JSONResponse:
        return JSONResponse(store.span_names(_required("serviceName", serviceName)))

    @api.get("/remoteServices")
    async def get_remote_services(serviceName: str | None = None) -> JSONResponse:
        return JSONResponse(store.remote_services(_required("serviceName", serviceName)))

    @api.get("/traces")
    async def get_traces(serviceName: str | None = None, remoteServiceName: str | None = None,
                         spanName: str | None = None, annotationQuery: str | None = None,
                         minDuration: str | None = None, maxDuration: str | None = None, endTs: str | None = None,
                         lookback: str | None = None, limit: str | None = None) -> JSONResponse:
        lookback_ms = _int_param("lookback", lookback)
        count = _int_param("limit", limit)
        found = store.traces(
            service_name=serviceName or None,
            remote_service_name=remoteServiceName or None,
            span_name=spanName or None,
            annotation_query=annotationQuery or None,
            min_duration_us=_int_param("minDuration", minDuration),
            max_duration_us=_int_param("maxDuration", maxDuration),
            end_ts_ms=_int_param("endTs", endTs),
            lookback_ms=DEFAULT_LOOKBACK_MS if lookback_ms is None else lookback_ms,
            limit=DEFAULT_LIMIT if count is None else count,
        )
        return JSONResponse([spans_json(trace) for trace in found])

    @api.get("/trace/{traceId}")
    async def get_trace(traceId: str) -> JSONResponse:
        spans = store.trace(traceId)
        if spans is None:
            raise TraceNotFound(f"trace {traceId} not found")
        return JSONResponse(spans_json(spans))

    return api
