"""The Telemetry API's metrics overrides, where telemetry makes the metrics: which workloads
they reach, and what they drop, remove and set."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from libs.config import parse_text
from libs.config.directory import Workload
from services.telemetry.metrics import MetricStore
from services.telemetry.overrides import OverrideIndex
from services.telemetry.reports import http_report
from tests.unit.telemetry.test_reports import DIRECTORY, PRODUCTPAGE, REVIEWS, http_entry


def telemetry(name: str, namespace: str, spec: str) -> str:
    return (f"apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {{name: {name}, namespace: {namespace}}}"
            f"\nspec: {spec}\n")


def index(*documents: str) -> OverrideIndex:
    result = parse_text("---\n".join(documents), "t")
    assert result.ok, result.errors()
    return OverrideIndex.build([r for _, r in result.resources], "istio-system")


MESH_WIDE = telemetry("mesh", "istio-system", """{metrics: [{overrides: [
    {match: {metric: REQUEST_COUNT, mode: CLIENT}, disabled: true},
    {tagOverrides: {request_protocol: {operation: REMOVE}, host: {value: request.host},
                    team: {value: "'books'"}}}]}]}""")
REVIEWS_ONLY = telemetry("reviews", "default", """{selector: {matchLabels: {app: reviews}}, metrics: [{overrides: [
    {tagOverrides: {team: {value: "'reviewers'"}}}]}]}""")


def exposition(store: MetricStore) -> str:
    registry = CollectorRegistry()
    registry.register(store)
    return generate_latest(registry).decode()


def test_mesh_wide_overrides_drop_remove_and_set() -> None:
    overrides = index(MESH_WIDE).for_workload(PRODUCTPAGE.workload)
    store = MetricStore()
    client = http_report(http_entry("outbound|9080||reviews.default.svc.cluster.local", peer="127.0.10.1",
                                    upstream="127.0.10.4"), PRODUCTPAGE, DIRECTORY)
    assert client is not None
    store.add_http(client, overrides)
    text = exposition(store)
    # The caller's request count is off; its duration histogram is not.
    assert "istio_requests_total{" not in text
    duration = next(line for line in text.splitlines() if line.startswith("istio_request_duration_milliseconds_count"))
    assert 'team="books"' in duration and 'host="reviews:9080"' in duration and "request_protocol" not in duration


def test_the_most_specific_telemetry_wins() -> None:
    built = index(MESH_WIDE, REVIEWS_ONLY)
    reviews = built.for_workload(REVIEWS.workload)
    assert reviews.labels("istio_requests_total", "destination", {"team": "x"}, {}) == {"team": "reviewers"}
    # Workloads the selector misses keep the mesh-wide overrides.
    productpage = built.for_workload(Workload("productpage-v1", "default", (("app", "productpage"),)))
    assert productpage.disabled("istio_requests_total", "source")
    assert not productpage.disabled("istio_requests_total", "destination")
