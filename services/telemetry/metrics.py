"""Istio's standard metrics, kept per series and served in Prometheus' format.

Series are keyed by their label values; a series no report touched for `expiry_s` is
dropped at the next scrape (Istio #35066: series of workloads long gone were kept
forever).  Counts are exact: each report is added once, by the one event loop that
receives it, so nothing here locks.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from services.telemetry.reports import LABELS, Report

# Envoy's default histogram buckets, which Istio's metrics use (ms for durations, bytes for sizes).
BUCKETS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000,
           3600000)
# TCP metrics carry no response code or gRPC status.
TCP_LABELS = tuple(name for name in LABELS if name not in ("response_code", "grpc_response_status"))
_TCP_INDEXES = tuple(LABELS.index(name) for name in TCP_LABELS)

Key = tuple[str, ...]


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, value)] += 1
        self.total += value


@dataclass
class _HttpSeries:
    requests: int = 0
    duration: _Histogram = field(default_factory=_Histogram)
    request_bytes: _Histogram = field(default_factory=_Histogram)
    response_bytes: _Histogram = field(default_factory=_Histogram)
    touched: float = 0.0


@dataclass
class _TcpSeries:
    opened: int = 0
    closed: int = 0
    sent: int = 0
    received: int = 0
    touched: float = 0.0


class MetricStore(Collector):
    """Every series of Istio's standard metrics; a prometheus_client collector."""

    def __init__(self, *, expiry_s: float = 600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.expiry_s = expiry_s
        self._clock = clock
        self._http: dict[Key, _HttpSeries] = {}
        self._tcp: dict[Key, _TcpSeries] = {}

    def add_http(self, report: Report) -> None:
        series = self._http.get(report.labels)
        if series is None:
            series = self._http[report.labels] = _HttpSeries()
        series.requests += 1
        series.duration.observe(report.duration_ms)
        series.request_bytes.observe(report.request_bytes)
        series.response_bytes.observe(report.response_bytes)
        series.touched = self._clock()

    def add_tcp(self, report: Report) -> None:
        key = tuple(report.labels[i] for i in _TCP_INDEXES)
        series = self._tcp.get(key)
        if series is None:
            series = self._tcp[key] = _TcpSeries()
        series.opened += int(report.opened)
        series.closed += int(report.closed)
        series.sent += report.sent_bytes
        series.received += report.received_bytes
        series.touched = self._clock()

    @property
    def series(self) -> int:
        return len(self._http) + len(self._tcp)

    def expire(self) -> int:
        """Drop series idle for longer than `expiry_s`; how many went."""
        if self.expiry_s <= 0:
            return 0
        cutoff = self._clock() - self.expiry_s
        gone = 0
        for table in (self._http, self._tcp):
            stale = [key for key, series in table.items() if series.touched < cutoff]
            for key in stale:
                del table[key]
            gone += len(stale)
        return gone

    def http_series(self) -> Iterator[tuple[dict[str, str], int, list[int], float]]:
        """(labels, requests, duration bucket counts, duration sum) per HTTP series, for the graph."""
        for key, series in self._http.items():
            yield dict(zip(LABELS, key, strict=True)), series.requests, series.duration.counts, series.duration.total

    def tcp_series(self) -> Iterator[tuple[dict[str, str], int, int]]:
        """(labels, connections opened, bytes both ways) per TCP series, for the graph."""
        for key, series in self._tcp.items():
            yield dict(zip(TCP_LABELS, key, strict=True)), series.opened, series.sent + series.received

    def collect(self) -> Iterator[Metric]:
        self.expire()
        requests = CounterMetricFamily("istio_requests_total", "Requests, by reporter and peers", labels=LABELS)
        histograms = {name: HistogramMetricFamily(name, text, labels=LABELS) for name, text in (
            ("istio_request_duration_milliseconds", "Request duration in milliseconds"),
            ("istio_request_bytes", "Request size (headers and body) in bytes"),
            ("istio_response_bytes", "Response size (headers and body) in bytes"))}
        for key, http in self._http.items():
            labels = list(key)
            requests.add_metric(labels, http.requests)
            for name, histogram in (("istio_request_duration_milliseconds", http.duration),
                                    ("istio_request_bytes", http.request_bytes),
                                    ("istio_response_bytes", http.response_bytes)):
                histograms[name].add_metric(labels, _cumulative(histogram), histogram.total)
        yield requests
        yield from histograms.values()
        tcp = {name: CounterMetricFamily(name, text, labels=TCP_LABELS) for name, text in (
            ("istio_tcp_sent_bytes_total", "Bytes sent to the downstream on TCP connections"),
            ("istio_tcp_received_bytes_total", "Bytes received from the downstream on TCP connections"),
            ("istio_tcp_connections_opened_total", "TCP connections opened"),
            ("istio_tcp_connections_closed_total", "TCP connections closed"))}
        for key, series in self._tcp.items():
            labels = list(key)
            tcp["istio_tcp_sent_bytes_total"].add_metric(labels, series.sent)
            tcp["istio_tcp_received_bytes_total"].add_metric(labels, series.received)
            tcp["istio_tcp_connections_opened_total"].add_metric(labels, series.opened)
            tcp["istio_tcp_connections_closed_total"].add_metric(labels, series.closed)
        yield from tcp.values()


def _cumulative(histogram: _Histogram) -> list[tuple[str, float]]:
    running = 0
    buckets: list[tuple[str, float]] = []
    for bound, count in zip([*map(_bound, BUCKETS), "+Inf"], histogram.counts, strict=True):
        running += count
        buckets.append((bound, running))
    return buckets


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
