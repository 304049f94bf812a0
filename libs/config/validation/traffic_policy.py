"""DestinationRule traffic policies: load balancing, connection pools, outlier detection,
TLS, tunnels (Istio's validateTrafficPolicy and helpers)."""

from __future__ import annotations

import math
from typing import Any

from libs.config.validation import hosts, ports, quantities, tls
from libs.config.validation._checker import Checker
from libs.config.validation.locality import locality_lb

_POLICY_FIELDS = ("loadBalancer", "connectionPool", "outlierDetection", "tls", "portLevelSettings", "tunnel",
                  "proxyProtocol", "retryBudget")
_PORT_POLICY_FIELDS = ("loadBalancer", "connectionPool", "outlierDetection", "tls")
# Envoy's maglev table size must be a prime below this.
_MAGLEV_LIMIT = 5_000_011


def _is_prime(number: int) -> bool:
    """Envoy's isPrime (which Istio copies), where 1 counts as prime."""
    if 0 < number < 4:
        return True
    if number % 2 == 0:
        return False
    return all(number % factor for factor in range(3, math.isqrt(number) + 1, 2))


def outlier_detection(check: Checker, path: str, outlier: dict[str, Any]) -> None:
    for field in ("interval", "baseEjectionTime"):
        if field in outlier:
            quantities.duration(check, f"{path}.{field}", outlier[field])
    if outlier.get("consecutiveErrors"):
        check.warn(f"{path}.consecutiveErrors", "deprecated: use consecutiveGatewayErrors or consecutive5xxErrors")
    if outlier.get("consecutiveLocalOriginFailures") and not outlier.get("splitExternalLocalOriginErrors"):
        check.error(f"{path}.consecutiveLocalOriginFailures", "has no effect unless splitExternalLocalOriginErrors "
                                                              "is true")
    for field in ("maxEjectionPercent", "minHealthPercent"):
        if field in outlier:
            quantities.percent(check, f"{path}.{field}", outlier[field])
    for i, code in enumerate(outlier.get("outlierDetectionHttpErrorCodes", [])):
        if not 100 <= code <= 599:
            check.error(f"{path}.outlierDetectionHttpErrorCodes[{i}]", f"HTTP status {code} is not in 100-599")


def connection_pool(check: Checker, path: str, pool: dict[str, Any]) -> None:
    if not pool:
        check.error(path, "a connection pool must set at least one field")
    http = pool.get("http", {})
    for field in ("http1MaxPendingRequests", "http2MaxRequests", "maxRequestsPerConnection", "maxRetries",
                  "maxConcurrentStreams"):
        if field in http:
            quantities.non_negative(check, f"{path}.http.{field}", http[field])
    if "idleTimeout" in http:
        quantities.duration(check, f"{path}.http.idleTimeout", http["idleTimeout"])
    if http.get("h2UpgradePolicy") == "UPGRADE" and http.get("useClientProtocol"):
        check.error(f"{path}.http.useClientProtocol", "must not be true when h2UpgradePolicy is UPGRADE")
    for field in ("interval", "timeout"):
        if field in http.get("http2KeepAlive", {}):
            quantities.duration(check, f"{path}.http.http2KeepAlive.{field}", http["http2KeepAlive"][field])
    tcp = pool.get("tcp", {})
    if "maxConnections" in tcp:
        quantities.non_negative(check, f"{path}.tcp.maxConnections", tcp["maxConnections"])
    for field in ("connectTimeout", "maxConnectionDuration"):
        if field in tcp:
            quantities.duration(check, f"{path}.tcp.{field}", tcp[field])
    # tcp.idleTimeout may be 0s: the API documents it as "disable the timeout".
    for field in ("time", "interval"):
        if field in tcp.get("tcpKeepalive", {}):
            quantities.duration(check, f"{path}.tcp.tcpKeepalive.{field}", tcp["tcpKeepalive"][field])
    if "maxConnections" in pool.get("perHostLimits", {}):
        quantities.non_negative(check, f"{path}.perHostLimits.maxConnections", pool["perHostLimits"]["maxConnections"])


def load_balancer(check: Checker, path: str, lb: dict[str, Any], outlier: dict[str, Any] | None) -> None:
    consistent = lb.get("consistentHash")
    if consistent is not None:
        where = f"{path}.consistentHash"
        if "httpCookie" in consistent and not consistent["httpCookie"].get("name"):
            check.error(f"{where}.httpCookie.name", "an HTTP cookie hash needs a cookie name")
        if consistent.get("minimumRingSize"):
            check.warn(f"{where}.minimumRingSize", "deprecated: use ringHash.minimumRingSize")
            if "ringHash" in consistent or "maglev" in consistent:
                check.error(where, "only one of minimumRingSize or ringHash/maglev can be set")
        if "maglev" in consistent:
            size = consistent["maglev"].get("tableSize", 0)
            if not size:
                check.error(f"{where}.maglev.tableSize", "tableSize must be set for maglev")
            elif size >= _MAGLEV_LIMIT or not _is_prime(size):
                check.error(f"{where}.maglev.tableSize", f"tableSize {size} must be a prime number below "
                                                         f"{_MAGLEV_LIMIT}")
    if "localityLbSetting" in lb:
        locality_lb(check, f"{path}.localityLbSetting", lb["localityLbSetting"], outlier)
    if "warmupDurationSecs" in lb:
        quantities.duration(check, f"{path}.warmupDurationSecs", lb["warmupDurationSecs"])
    warmup = lb.get("warmup", {})
    if "warmup" in lb and "duration" not in warmup:
        check.error(f"{path}.warmup.duration", "warmup needs a duration")
    if "duration" in warmup:
        quantities.duration(check, f"{path}.warmup.duration", warmup["duration"])
    if "minimumPercent" in warmup:
        quantities.percent(check, f"{path}.warmup.minimumPercent", warmup["minimumPercent"])
    if warmup.get("aggression", 1) < 0:
        check.error(f"{path}.warmup.aggression", "aggression must not be negative")


def _tunnel(check: Checker, path: str, tunnel: dict[str, Any]) -> None:
    if tunnel.get("protocol", "CONNECT") not in ("CONNECT", "POST"):
        check.error(f"{path}.protocol", 'tunnel protocol must be "CONNECT" or "POST"')
    target = tunnel.get("targetHost", "")
    if hosts.fqdn_problem(target) and not hosts.is_ip(target):
        check.error(f"{path}.targetHost", f"tunnel target host {target!r} must be an FQDN or an IP address")
    ports.port_number(check, f"{path}.targetPort", tunnel.get("targetPort", 0))


def _settings(check: Checker, path: str, policy: dict[str, Any]) -> None:
    outlier = policy.get("outlierDetection")
    if outlier is not None:
        outlier_detection(check, f"{path}.outlierDetection", outlier)
    if "connectionPool" in policy:
        connection_pool(check, f"{path}.connectionPool", policy["connectionPool"])
    if "loadBalancer" in policy:
        load_balancer(check, f"{path}.loadBalancer", policy["loadBalancer"], outlier)
    if "tls" in policy:
        tls.client_tls(check, f"{path}.tls", policy["tls"])


def traffic_policy(check: Checker, path: str, policy: dict[str, Any]) -> None:
    if not any(field in policy for field in _POLICY_FIELDS):
        check.error(path, "a traffic policy must set at least one field")
        return
    if "tunnel" in policy and "proxyProtocol" in policy:
        check.error(path, "tunnel and proxyProtocol must not be set together")
    _settings(check, path, policy)
    for i, port_policy in enumerate(policy.get("portLevelSettings", [])):
        where = f"{path}.portLevelSettings[{i}]"
        if "port" not in port_policy:
            check.error(f"{where}.port", "a port traffic policy needs a port")
        if not any(field in port_policy for field in _PORT_POLICY_FIELDS):
            check.error(where, "a port traffic policy must set at least one field")
        _settings(check, where, port_policy)
    if "tunnel" in policy:
        _tunnel(check, f"{path}.tunnel", policy["tunnel"])
    budget = policy.get("retryBudget", {})
    if "percent" in budget:
        quantities.percent(check, f"{path}.retryBudget.percent", budget["percent"])
