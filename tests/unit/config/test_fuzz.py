"""Bounded fuzzing: whatever arrives, `parse_text` returns a ParseResult and never raises.

Three feeds: raw text and bytes; random nested structures as YAML documents; and valid
resources of every kind with one value swapped for a random one, which gets past the
schema walk into the semantic rules.
"""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libs.config import ParseResult, parse_documents, parse_text
from libs.config._errors import Origin

FUZZ = settings(max_examples=300, deadline=timedelta(milliseconds=500),
                suppress_health_check=[HealthCheck.too_slow])

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
                    st.sampled_from(["*", "1s", "0s", "-1ms", "a.b.c", "10.0.0.0/8", "unix:///x", "%", "(a",
                                     "STRICT", "HTTP", "80", "ns/*", "@request.auth.claims.x", "*.a.com"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.text(max_size=12), st.integers(0, 70000)), inner, max_size=4)),
    max_leaves=25)

SEEDS: list[dict[str, Any]] = [
    {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "v"}, "spec": {
        "hosts": ["a.example.com"], "gateways": ["mesh"], "http": [{
            "match": [{"uri": {"prefix": "/a"}, "headers": {"x-a": {"regex": "b.*"}}}],
            "route": [{"destination": {"host": "a", "subset": "v1", "port": {"number": 80}}, "weight": 100}],
            "retries": {"attempts": 2, "retryOn": "5xx", "perTryTimeout": "1s"}, "timeout": "3s",
            "fault": {"delay": {"fixedDelay": "1s", "percentage": {"value": 5}}},
            "corsPolicy": {"allowOrigins": [{"exact": "https://a"}], "maxAge": "10s"},
            "headers": {"request": {"set": {"x-b": "%HOSTNAME%"}}}}],
        "tcp": [{"match": [{"port": 9000}], "route": [{"destination": {"host": "b"}}]}]}},
    {"apiVersion": "networking.istio.io/v1beta1", "kind": "DestinationRule", "metadata": {"name": "d"}, "spec": {
        "host": "a", "trafficPolicy": {
            "loadBalancer": {"consistentHash": {"httpCookie": {"name": "c", "ttl": "0s"}},
                             "localityLbSetting": {"distribute": [{"from": "us", "to": {"us/z1": 100}}]}},
            "connectionPool": {"tcp": {"connectTimeout": "1s"}, "http": {"maxRetries": 3}},
            "outlierDetection": {"interval": "1s", "maxEjectionPercent": 10}, "tls": {"mode": "ISTIO_MUTUAL"}},
        "subsets": [{"name": "v1", "labels": {"version": "v1"}}]}},
    {"apiVersion": "networking.istio.io/v1alpha3", "kind": "Gateway", "metadata": {"name": "g"}, "spec": {
        "servers": [{"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["ns/a.com"],
                     "tls": {"mode": "SIMPLE", "credentialName": "c"}}]}},
    {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": {"name": "s"}, "spec": {
        "hosts": ["a.com"], "addresses": ["10.0.0.1"], "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
        "resolution": "STATIC", "endpoints": [{"address": "10.0.0.2", "ports": {"http": 8080}}]}},
    {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar", "metadata": {"name": "c"}, "spec": {
        "egress": [{"port": {"number": 80, "protocol": "HTTP"}, "hosts": ["./*"]}],
        "ingress": [{"port": {"number": 8080, "protocol": "HTTP", "name": "h"}, "defaultEndpoint": "127.0.0.1:80"}]}},
    {"apiVersion": "networking.istio.io/v1", "kind": "WorkloadGroup", "metadata": {"name": "w"}, "spec": {
        "metadata": {"labels": {"app": "a"}}, "template": {"ports": {"http": 80}},
        "probe": {"httpGet": {"port": 80, "path": "/"}}}},
    {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": {"name": "p"}, "spec": {
        "action": "DENY", "rules": [{"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}],
                                     "to": [{"operation": {"ports": ["80"], "paths": ["/a/{*}"]}}],
                                     "when": [{"key": "request.headers[x]", "values": ["a"]}]}]}},
    {"apiVersion": "security.istio.io/v1beta1", "kind": "PeerAuthentication", "metadata": {"name": "p"}, "spec": {
        "selector": {"matchLabels": {"app": "a"}}, "portLevelMtls": {"8080": {"mode": "STRICT"}}}},
    {"apiVersion": "security.istio.io/v1", "kind": "RequestAuthentication", "metadata": {"name": "r"}, "spec": {
        "jwtRules": [{"issuer": "i", "jwksUri": "https://a/jwks", "fromHeaders": [{"name": "x-jwt"}]}]}},
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _replace(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return document


def _check(result: Any) -> None:
    assert isinstance(result, ParseResult)
    # Every message renders: the error paths and reasons are plain strings.
    assert all(isinstance(line, str) for line in result.errors())


@FUZZ
@given(st.one_of(st.text(max_size=400), st.binary(max_size=400)))
def test_random_text_and_bytes(data: str | bytes) -> None:
    _check(parse_text(data, "fuzz.yaml"))


@FUZZ
@given(st.lists(VALUES, max_size=3))
def test_random_structures_as_yaml(documents: list[Any]) -> None:
    text = yaml.safe_dump_all(documents)
    _check(parse_text(text, "fuzz.yaml"))
    _check(parse_documents((Origin("fuzz", i), document) for i, document in enumerate(documents)))


@FUZZ
@given(st.data())
def test_valid_resources_with_one_value_swapped(data: st.DataObject) -> None:
    document = copy.deepcopy(data.draw(st.sampled_from(SEEDS)))
    path = data.draw(st.sampled_from(_paths(document["spec"])))
    mutated = _replace(document, ("spec", *path), data.draw(VALUES))
    _check(parse_documents([(Origin("fuzz"), mutated)]))
    # And through YAML, when the value survives a round trip (JSON-compatible).
    try:
        text = json.dumps(mutated)
    except (TypeError, ValueError):
        return
    _check(parse_text(text, "fuzz.json"))
