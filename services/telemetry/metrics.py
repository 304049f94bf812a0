"""Istio's standard metrics, kept per series and served in Prometheus' format.

Each metric keeps its own series, keyed by their labels: the Telemetry API may drop a
metric or change its labels for some workloads (`overrides`), so two metrics need not
share a label set.  A series no report touched for `expiry_s` is dropped at the next
scrape (Istio #35066: series of workloads long gone were kept forever).  Counts are exact:
each report is added once, by the one event loop that receives it, so nothing here locks.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from services.telemetry.overrides import NO_OVERRIDES, MetricOverrides
from services.telemetry.reports import LABELS, Report

# Envoy's default histogram buckets, which Istio's metrics use (ms for durations, bytes for sizes).
BUCKETS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000,
           3600000)
REQUESTS = "istio_requests_total"
DURATION = "istio_request_duration_milliseconds"
COUNTERS = {
    REQUESTS: "Requests, by reporter and peers",
    "istio_tcp_sent_bytes_total": "Bytes sent to the downstream on TCP connections",
    "istio_tcp_received_bytes_total": "Bytes received from the downstream on TCP connections",
    "istio_tcp_connections_opened_total": "TCP connections opened",
    "istio_tcp_connections_closed_total": "TCP connections closed",
}
HISTOGRAMS = {
    DURATION: "Request duration in milliseconds",
    "istio_request_bytes": "Request size (headers and body) in bytes",
    "istio_response_bytes": "Response size (headers and body) in bytes",
}
# TCP metrics carry no response code or gRPC status.
TCP_DROPPED = ("response_code", "grpc_response_status")

Key = tuple[tuple[str, str], ...]


@dataclass
class _Counter:
    value: float = 0.0
    touched: float = 0.0


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0
    touched: float = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, value)] += 1
        self.total += value


class MetricStore(Collector):
    """Every series of Istio's standard metrics; a prometheus_client collector."""

    def __init__(self, *, expiry_s: float = 600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.expiry_s = expiry_s
        self._clock = clock
        self._counters: dict[str, dict[Key, _Counter]] = {name: {} for name in COUNTERS}
        self._histograms: dict[str, dict[Key, _Histogram]] = {name: {} for name in HISTOGRAMS}
        # Label values (HTTP and TCP reports never share them: TCP's protocol is "tcp") -> key.
        self._keys: dict[tuple[str, ...], Key] = {}
        # Label values -> the four series of an HTTP report without overrides, found once:
        # thousands of reports a second share a few label sets.
        self._http_series: dict[tuple[str, ...], tuple[_Counter, _Histogram, _Histogram, _Histogram]] = {}

    def _key(self, metric: str, report: Report, overrides: MetricOverrides, *, tcp: bool = False) -> Key | None:
        if not overrides.overrides:
            # Every metric of a report shares one key, made once per distinct label set.
            key = self._keys.get(report.labels)
            if key is None:
                pairs = zip(LABELS, report.labels, strict=True)
                key = self._keys[report.labels] = tuple((n, v) for n, v in pairs if not (tcp and n in TCP_DROPPED))
            return key
        labels = report.label_map()
        if overrides.disabled(metric, labels["reporter"]):
            return None
        if tcp:
            for name in TCP_DROPPED:
                labels.pop(name)
        return tuple(overrides.labels(metric, labels["reporter"], labels, report.request_attributes()).items())

    def _count(self, metric: str, report: Report, overrides: MetricOverrides, amount: float, *,
               tcp: bool = False) -> None:
        key = self._key(metric, report, overrides, tcp=tcp)
        if key is None:
            return
        series = self._counters[metric].get(key)
        if series is None:
            series = self._counters[metric][key] = _Counter()
        series.value += amount
        series.touched = self._clock()

    def _observe(self, metric: str, report: Report, overrides: MetricOverrides, value: float) -> None:
        key = self._key(metric, report, overrides)
        if key is None:
            return
        series = self._histograms[metric].get(key)
        if series is None:
            series = self._histograms[metric][key] = _Histogram()
        series.observe(value)
        series.touched = self._clock()

    def add_http(self, report: Report, overrides: MetricOverrides = NO_OVERRIDES) -> None:
        if overrides.overrides:
            self._count(REQUESTS, report, overrides, 1)
            self._observe(DURATION, report, overrides, report.duration_ms)
            self._observe("istio_request_bytes", report, overrides, report.request_bytes)
            self._observe("istio_response_bytes", report, overrides, report.response_bytes)
            return
        found = self._http_series.get(report.labels)
        if found is None:
            found = self._http_series[report.labels] = self._series_of(report)
        requests, duration, request_bytes, response_bytes = found
        now = self._clock()
        requests.value += 1
        requests.touched = duration.touched = request_bytes.touched = response_bytes.touched = now
        duration.observe(report.duration_ms)
        request_bytes.observe(report.request_bytes)
        response_bytes.observe(report.response_bytes)

    def _series_of(self, report: Report) -> tuple[_Counter, _Histogram, _Histogram, _Histogram]:
        key = self._key(REQUESTS, report, NO_OVERRIDES)
        assert key is not None  # only overrides disable a metric
        duration, request_bytes, response_bytes = (
            self._histograms[name].setdefault(key, _Histogram())
            for name in (DURATION, "istio_request_bytes", "istio_response_bytes"))
        return self._counters[REQUESTS].setdefault(key, _Counter()), duration, request_bytes, response_bytes

    def add_tcp(self, report: Report, overrides: MetricOverrides = NO_OVERRIDES) -> None:
        for metric, amount in (("istio_tcp_connections_opened_total", int(report.opened)),
                               ("istio_tcp_connections_closed_total", int(report.closed)),
                               ("istio_tcp_sent_bytes_total", report.sent_bytes),
                               ("istio_tcp_received_bytes_total", report.received_bytes)):
            self._count(metric, report, overrides, amount, tcp=True)

    @property
    def series(self) -> int:
        return sum(map(len, self._counters.values())) + sum(map(len, self._histograms.values()))

    def expire(self) -> int:
        """Drop series idle for longer than `expiry_s`; how many went."""
        if self.expiry_s <= 0:
            return 0
        cutoff = self._clock() - self.expiry_s
        gone = 0
        tables: list[dict[Key, _Counter] | dict[Key, _Histogram]] = [*self._counters.values(),
                                                                      *self._histograms.values()]
        for table in tables:
            stale = [key for key, series in table.items() if series.touched < cutoff]
            for key in stale:
                del table[key]
            gone += len(stale)
        if gone:
            live = {key for table in tables for key in table}
            self._keys = {values: key for values, key in self._keys.items() if key in live}
            # Found series may be gone; they are found again from the tables.
            self._http_series.clear()
        return gone

    def http_series(self) -> Iterator[tuple[dict[str, str], int, list[int], float]]:
        """(labels, requests, duration bucket counts, duration sum) per request series, for the graph."""
        durations = self._histograms[DURATION]
        empty = _Histogram()
        for key, counter in self._counters[REQUESTS].items():
            labels = dict(key)
            if not all(name in labels for name in LABELS):
                continue  # an override removed labels the graph needs
            histogram = durations.get(key, empty)
            yield labels, int(counter.value), histogram.counts, histogram.total

    def tcp_series(self) -> Iterator[tuple[dict[str, str], int, int]]:
        """(labels, connections opened, bytes both ways) per TCP series, for the graph."""
        opened = self._counters["istio_tcp_connections_opened_total"]
        sent, received = self._counters["istio_tcp_sent_bytes_total"], self._counters["istio_tcp_received_bytes_total"]
        empty = _Counter()
        for key, counter in opened.items():
            labels = dict(key)
            if all(name in labels for name in LABELS if name not in TCP_DROPPED):
                yield labels, int(counter.value), int(sent.get(key, empty).value + received.get(key, empty).value)

    def exposition(self, chunk_bytes: int = 256 * 1024) -> Iterator[bytes]:
        """Prometheus' text format, in pieces of about `chunk_bytes`, written straight from the
        series: Istio's 21 labels and three histograms make thousands of series a body of
        100 MB and more, which must never be held whole (nor built as one dict per sample)."""
        self.expire()
        lines: list[str] = []
        size = 0

        def flush() -> bytes:
            nonlocal size
            piece = ("\n".join(lines) + "\n").encode()
            lines.clear()
            size = 0
            return piece

        for name, text in COUNTERS.items():
            lines += [f"# HELP {name} {text}", f"# TYPE {name} counter"]
            for key, counter in self._counters[name].items():
                line = f"{name}{{{_render(key)}}} {_number(counter.value)}"
                lines.append(line)
                size += len(line)
                if size >= chunk_bytes:
                    yield flush()
        for name, text in HISTOGRAMS.items():
            lines += [f"# HELP {name} {text}", f"# TYPE {name} histogram"]
            for key, histogram in self._histograms[name].items():
                prefix = _render(key)
                separator = "," if prefix else ""
                running = 0
                for bound, count in zip(_BOUNDS, histogram.counts, strict=True):
                    running += count
                    lines.append(f"{name}_bucket{{{prefix}{separator}{bound}}} {_number(running)}")
                lines.append(f"{name}_count{{{prefix}}} {_number(running)}")
                lines.append(f"{name}_sum{{{prefix}}} {_number(histogram.total)}")
                size += (len(_BOUNDS) + 2) * (len(prefix) + len(name) + 30)
                if size >= chunk_bytes:
                    yield flush()
        if lines:
            yield flush()

    def collect(self) -> Iterator[Metric]:
        self.expire()
        for name, text in COUNTERS.items():
            family = Metric(name.removesuffix("_total"), text, "counter")
            for key, counter in self._counters[name].items():
                family.add_sample(name, dict(key), counter.value)
            yield family
        for name, text in HISTOGRAMS.items():
            family = Metric(name, text, "histogram")
            for key, histogram in self._histograms[name].items():
                labels = dict(key)
                running = 0
                for bound, count in zip([*map(_bound, BUCKETS), "+Inf"], histogram.counts, strict=True):
                    running += count
                    family.add_sample(f"{name}_bucket", {**labels, "le": bound}, running)
                family.add_sample(f"{name}_count", labels, running)
                family.add_sample(f"{name}_sum", labels, histogram.total)
            yield family


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _render(key: Key) -> str:
    return ",".join(f'{name}="{_escape(value)}"' for name, value in key)


def _number(value: float) -> str:
    return repr(float(value))


_BOUNDS = [*(f'le="{b}"' for b in (str(int(v)) if float(v).is_integer() else str(v) for v in BUCKETS)), 'le="+Inf"']


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
