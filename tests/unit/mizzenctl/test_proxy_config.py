"""`mizzenctl proxy-config` tables in istioctl's shapes, from a real gateway's config as
pilot sent it and as its Envoy holds it (testdata/README.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tools.mizzenctl import config_dump, envoy_tables
from tools.mizzenctl.table import render

DATA = Path(__file__).parent / "testdata"
REVIEWS = "reviews.default.svc.cluster.local"


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def test_clusters_from_pilot_name_their_destination_rule() -> None:
    rules = load("pilot_config_origins.json")["destination_rules"]
    rows = envoy_tables.cluster_rows(config_dump.clusters(load("pilot_config_dump.json")), rules)
    assert render(envoy_tables.CLUSTER_HEADER, rows) == """\
SERVICE FQDN                          PORT     SUBSET     DIRECTION     TYPE             DESTINATION RULE
BlackHoleCluster                      -        -          -             STATIC
PassthroughCluster                    -        -          -             ORIGINAL_DST
reviews.default.svc.cluster.local     80       -          outbound      EDS              reviews.default
reviews.default.svc.cluster.local     80       v1         outbound      EDS              reviews.default
reviews.default.svc.cluster.local     80       v2         outbound      EDS              reviews.default
"""


def test_clusters_from_envoy_include_its_bootstrap_clusters_and_filter() -> None:
    clusters = config_dump.clusters(load("envoy_config_dump.json"))
    names = [row[0] for row in envoy_tables.cluster_rows(clusters)]
    assert names == ["BlackHoleCluster", "PassthroughCluster", "admin", REVIEWS, REVIEWS, REVIEWS, "xds-grpc"]
    assert envoy_tables.cluster_rows(clusters, subset="v2") == [(REVIEWS, "80", "v2", "outbound", "EDS", "")]
    assert [r[2] for r in envoy_tables.cluster_rows(clusters, fqdn="reviews", port=80)] == ["-", "v1", "v2"]


def test_listeners() -> None:
    rows = envoy_tables.listener_rows(config_dump.listeners(load("envoy_config_dump.json")))
    assert render(envoy_tables.LISTENER_HEADER, rows) == """\
ADDRESS       PORT     MATCH     DESTINATION
127.0.0.1     8080     ALL       Route: http.8080
"""
    assert envoy_tables.listener_rows(config_dump.listeners(load("envoy_config_dump.json")), port=9999) == []


def test_routes_name_their_virtual_service() -> None:
    rows = envoy_tables.route_rows(config_dump.route_configs(load("pilot_config_dump_nack.json")))
    assert render(envoy_tables.ROUTE_HEADER, rows) == """\
NAME          VHOST NAME               DOMAINS             MATCH                   VIRTUAL SERVICE
http.8080     bad.example.com:8080     bad.example.com     /*                      bad.default
http.8080     *:8080                   *                   /* [end-user=jason]     reviews.default
http.8080     *:8080                   *                   /*                      reviews.default
"""


def test_endpoints_from_pilot_and_from_envoy() -> None:
    from_pilot = envoy_tables.endpoint_rows_from_assignments(
        config_dump.load_assignments(load("pilot_config_dump.json")), cluster=f"outbound|80||{REVIEWS}")
    assert from_pilot == [("127.0.0.1:9001", "HEALTHY", "-", f"outbound|80||{REVIEWS}"),
                          ("127.0.0.1:9002", "HEALTHY", "-", f"outbound|80||{REVIEWS}")]
    from_envoy = envoy_tables.endpoint_rows_from_clusters(load("envoy_clusters.json"))
    assert render(envoy_tables.ENDPOINT_HEADER, from_envoy) == f"""\
ENDPOINT            STATUS      OUTLIER CHECK     CLUSTER
127.0.0.1:9001      HEALTHY     OK                outbound|80|v2|{REVIEWS}
127.0.0.1:9001      HEALTHY     OK                outbound|80||{REVIEWS}
127.0.0.1:9002      HEALTHY     OK                outbound|80|v1|{REVIEWS}
127.0.0.1:9002      HEALTHY     OK                outbound|80||{REVIEWS}
127.0.0.1:15000     HEALTHY     OK                admin
127.0.0.1:15010     HEALTHY     OK                xds-grpc
"""


def test_outlier_ejection_and_health_come_from_envoys_host_status() -> None:
    statuses = {"cluster_statuses": [{"name": "c", "host_statuses": [
        {"address": {"socket_address": {"address": "10.0.0.1", "port_value": 80}},
         "health_status": {"eds_health_status": "UNHEALTHY", "failed_outlier_check": True}},
        {"address": {"pipe": {"path": "/var/run/sock"}}, "health_status": {"eds_health_status": "HEALTHY"}},
    ]}]}
    assert envoy_tables.endpoint_rows_from_clusters(statuses) == [
        ("10.0.0.1:80", "UNHEALTHY", "FAILED", "c"), ("unix:///var/run/sock", "HEALTHY", "OK", "c")]
    assert envoy_tables.endpoint_rows_from_clusters(statuses, status="healthy") == [
        ("unix:///var/run/sock", "HEALTHY", "OK", "c")]


@pytest.mark.parametrize(("domains", "expected"), [
    ([], ""),
    (["*"], "*"),
    ([REVIEWS, f"{REVIEWS}:80"], REVIEWS),
    # istioctl's unexpansion: the short spelling stands for the longer ones; two shown, the rest counted.
    (["reviews", "reviews:80", "reviews.default", "reviews.default:80", "reviews.default.svc",
      "reviews.default.svc.cluster.local", "10.0.0.1"], "reviews, reviews.default + 1 more..."),
])
def test_describe_domains(domains: list[str], expected: str) -> None:
    assert envoy_tables.describe_domains(domains) == expected


@pytest.mark.parametrize(("match", "expected"), [
    ({"prefix": "/"}, "/*"),
    ({"path": "/exact"}, "/exact"),
    ({"safe_regex": {"regex": "/v[0-9]+/.*"}}, "regex /v[0-9]+/.*"),
    ({"prefix": "/api", "headers": [{"name": "x-user", "string_match": {"prefix": "adm"}},
                                    {"name": "x-debug", "present_match": True, "invert_match": True}]},
     "/api* [x-user=adm*, !x-debug]"),
])
def test_describe_match(match: dict[str, Any], expected: str) -> None:
    assert envoy_tables.describe_match(match) == expected


def test_istio_config_metadata() -> None:
    path = "/apis/networking.istio.io/v1alpha3/namespaces/shop/destination-rule/cart"
    assert envoy_tables.istio_config({"filter_metadata": {"istio": {"config": path}}}) == "cart.shop"
    assert envoy_tables.istio_config({"filter_metadata": {"istio": {"config": "/elsewhere"}}}) == "<unknown>"
    assert envoy_tables.istio_config(None) == ""


def test_table_pads_like_tabwriter() -> None:
    table = render(("A", "BB", "C"), [("xxx", "", "z"), ("y", "w", "")])
    assert table == "A       BB     C\nxxx            z\ny       w\n"
