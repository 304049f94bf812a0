"""The Telemetry API's `metrics` section, applied where the metrics are made: per reporting
workload, which of Istio's metrics to drop and which labels to remove or set.

Scope as Istio: the root namespace's Telemetry applies mesh-wide, the workload's
namespace's overrides it, and one whose selector picks the workload overrides both (the
most specific Telemetry with a `metrics` section wins).  Overrides are matched by metric
(or ALL_METRICS) and mode: CLIENT is what the caller reports, SERVER what the callee does.

Tag values are CEL in Istio.  Mizzen evaluates the forms Istio's own examples use: a
string literal (`"'canary'"`) and the request attributes `request.host`,
`request.method` and `request.url_path`; anything else sets the label to `unknown` and
says so once in the log.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog

from libs.config import Resource
from libs.config.directory import UNKNOWN, Workload

log = structlog.get_logger(__name__)

# The Telemetry API's metric names for Istio's metrics.
METRIC_NAMES = {
    "REQUEST_COUNT": "istio_requests_total", "REQUEST_DURATION": "istio_request_duration_milliseconds",
    "REQUEST_SIZE": "istio_request_bytes", "RESPONSE_SIZE": "istio_response_bytes",
    "TCP_OPENED_CONNECTIONS": "istio_tcp_connections_opened_total",
    "TCP_CLOSED_CONNECTIONS": "istio_tcp_connections_closed_total",
    "TCP_SENT_BYTES": "istio_tcp_sent_bytes_total", "TCP_RECEIVED_BYTES": "istio_tcp_received_bytes_total",
}
ATTRIBUTES = ("request.host", "request.method", "request.url_path")


@dataclass(frozen=True)
class Override:
    metrics: frozenset[str]  # Prometheus names, empty: all
    reporter: str  # source, destination, or "" for both
    disabled: bool
    removed: frozenset[str]
    upserted: tuple[tuple[str, str], ...]  # (label, expression)

    def applies(self, metric: str, reporter: str) -> bool:
        return (not self.metrics or metric in self.metrics) and self.reporter in ("", reporter)


@dataclass(frozen=True)
class MetricOverrides:
    overrides: tuple[Override, ...] = ()

    def disabled(self, metric: str, reporter: str) -> bool:
        return any(o.disabled and o.applies(metric, reporter) for o in self.overrides)

    def labels(self, metric: str, reporter: str, labels: dict[str, str], request: dict[str, str]) -> dict[str, str]:
        """`labels` after every applicable tag override (in order: later ones win)."""
        found = dict(labels)
        for override in self.overrides:
            if not override.applies(metric, reporter):
                continue
            for name in override.removed:
                found.pop(name, None)
            for name, expression in override.upserted:
                found[name] = evaluate(expression, request)
        return found


NO_OVERRIDES = MetricOverrides()
_warned: set[str] = set()


def evaluate(expression: str, request: dict[str, str]) -> str:
    text = expression.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text in ATTRIBUTES:
        return request.get(text) or UNKNOWN
    if text not in _warned:
        _warned.add(text)
        log.warning("tag override expression not supported; the label is set to unknown", expression=text,
                    supported=["a quoted literal", *ATTRIBUTES])
    return UNKNOWN


def _override(body: dict[str, Any]) -> Override:
    match = body.get("match", {})
    metric = match.get("metric", "ALL_METRICS")
    metrics = frozenset() if metric == "ALL_METRICS" and not match.get("customMetric") else frozenset(
        {METRIC_NAMES.get(metric, match.get("customMetric", metric))})
    if "istio_request_duration_milliseconds" in metrics:
        # Prometheus' histogram series are named after the metric.
        metrics = metrics | {"istio_request_duration_milliseconds"}
    reporter = {"CLIENT": "source", "SERVER": "destination"}.get(match.get("mode", "CLIENT_AND_SERVER"), "")
    tags = body.get("tagOverrides", {})
    return Override(metrics, reporter, bool(body.get("disabled", False)),
                    frozenset(name for name, tag in tags.items() if tag.get("operation") == "REMOVE"),
                    tuple(sorted((name, tag.get("value", "")) for name, tag in tags.items()
                                 if tag.get("operation", "UPSERT") == "UPSERT")))


@dataclass
class OverrideIndex:
    """Telemetry resources with a `metrics` section, and the answer per reporting workload."""

    root_namespace: str = "istio-system"
    resources: list[Resource] = field(default_factory=list)
    _cache: dict[tuple[str, tuple[tuple[str, str], ...]], MetricOverrides] = field(default_factory=dict)

    @classmethod
    def build(cls, resources: Iterable[Resource], root_namespace: str) -> OverrideIndex:
        chosen = [r for r in resources if r.kind == "Telemetry" and r.spec.get("metrics")
                  and not r.spec.get("targetRef") and not r.spec.get("targetRefs")]
        return cls(root_namespace, sorted(chosen, key=lambda r: (r.namespace, r.name)))

    def for_workload(self, workload: Workload) -> MetricOverrides:
        key = (workload.namespace, workload.labels)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._resolve(workload)
        return found

    def _resolve(self, workload: Workload) -> MetricOverrides:
        labels = dict(workload.labels)
        best: tuple[tuple[bool, bool], Resource] | None = None
        for resource in self.resources:
            if resource.namespace not in (self.root_namespace, workload.namespace):
                continue
            selector = resource.spec.get("selector", {}).get("matchLabels")
            if selector and any(labels.get(k) != v for k, v in selector.items()):
                continue
            rank = (resource.namespace != self.root_namespace, bool(selector))
            if best is None or rank > best[0]:
                best = (rank, resource)
        if best is None:
            return NO_OVERRIDES
        return MetricOverrides(tuple(_override(body) for metrics in best[1].spec["metrics"]
                                     for body in metrics.get("overrides", [])))
