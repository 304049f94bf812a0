"""DestinationRule `loadBalancer` -> the cluster's lb_policy and lb_config, and the route's
hash policy (Istio's applyLoadBalancer, ApplyRingHashLoadBalancer, consistentHashToHashPolicy).

Consistent hashing has two halves: the cluster picks RING_HASH or MAGLEV, and every route to
the cluster says what to hash (a header, a cookie, the source IP, a query parameter).
"""

from __future__ import annotations

from typing import Any, TypeAlias

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.type.v3 import percent_pb2

from libs.config.durations import to_seconds
from libs.envoy import duration

Cluster: TypeAlias = cluster_pb2.Cluster
HashPolicy: TypeAlias = rc.RouteAction.HashPolicy

_SIMPLE = {
    "ROUND_ROBIN": Cluster.ROUND_ROBIN,
    "LEAST_CONN": Cluster.LEAST_REQUEST,
    "LEAST_REQUEST": Cluster.LEAST_REQUEST,
    "RANDOM": Cluster.RANDOM,
}
# Istio's default since 1.14 (UNSPECIFIED or no loadBalancer at all).
DEFAULT_LB = Cluster.LEAST_REQUEST
# Envoy's own default ring size, which Istio writes out when consistentHash names no ring.
_DEFAULT_RING_SIZE = 1024
# Runtime key for the slow-start aggression (Envoy requires one with a default value).
_AGGRESSION_KEY = "upstream.slow_start.aggression"


def _slow_start(balancer: dict[str, Any]) -> cluster_pb2.Cluster.SlowStartConfig | None:
    """`warmupDurationSecs` (a window) or `warmup` (window, minimum percent, aggression)."""
    if "warmupDurationSecs" in balancer:
        return Cluster.SlowStartConfig(slow_start_window=duration(to_seconds(balancer["warmupDurationSecs"])))
    warmup = balancer.get("warmup")
    if not warmup:
        return None
    config = Cluster.SlowStartConfig(slow_start_window=duration(to_seconds(warmup["duration"])))
    if "minimumPercent" in warmup:
        config.min_weight_percent.CopyFrom(percent_pb2.Percent(value=warmup["minimumPercent"]))
    if "aggression" in warmup:
        config.aggression.CopyFrom(base_pb2.RuntimeDouble(default_value=warmup["aggression"],
                                                          runtime_key=_AGGRESSION_KEY))
    return config


def _passthrough(cluster: cluster_pb2.Cluster) -> None:
    """PASSTHROUGH: connect to the address the client asked for, whatever the registry says."""
    cluster.type = Cluster.ORIGINAL_DST
    cluster.lb_policy = Cluster.CLUSTER_PROVIDED
    cluster.ClearField("eds_cluster_config")
    cluster.ClearField("load_assignment")


def _consistent_hash(cluster: cluster_pb2.Cluster, consistent: dict[str, Any]) -> None:
    if "maglev" in consistent:
        cluster.lb_policy = Cluster.MAGLEV
        if consistent["maglev"].get("tableSize"):
            cluster.maglev_lb_config.table_size.value = consistent["maglev"]["tableSize"]
    elif "ringHash" in consistent:
        cluster.lb_policy = Cluster.RING_HASH
        if consistent["ringHash"].get("minimumRingSize"):
            cluster.ring_hash_lb_config.minimum_ring_size.value = consistent["ringHash"]["minimumRingSize"]
    else:
        # The deprecated top-level minimumRingSize, else Envoy's default written out.
        cluster.lb_policy = Cluster.RING_HASH
        size = consistent.get("minimumRingSize") or _DEFAULT_RING_SIZE
        cluster.ring_hash_lb_config.minimum_ring_size.value = size


def apply_load_balancer(cluster: cluster_pb2.Cluster, balancer: dict[str, Any]) -> None:
    """lb_policy for `simple` (default LEAST_REQUEST) or `consistentHash`, with slow start."""
    if cluster.type == Cluster.ORIGINAL_DST:
        cluster.lb_policy = Cluster.CLUSTER_PROVIDED
        return
    simple = balancer.get("simple", "UNSPECIFIED")
    if simple == "PASSTHROUGH":
        _passthrough(cluster)
        return
    cluster.lb_policy = _SIMPLE.get(simple, DEFAULT_LB)
    slow_start = _slow_start(balancer)
    if slow_start is not None:
        if cluster.lb_policy == Cluster.ROUND_ROBIN:
            cluster.round_robin_lb_config.slow_start_config.CopyFrom(slow_start)
        elif cluster.lb_policy == Cluster.LEAST_REQUEST:
            cluster.least_request_lb_config.slow_start_config.CopyFrom(slow_start)
    if "consistentHash" in balancer:
        # Replaces the lb_config oneof, slow start included (Envoy has none for hashing).
        _consistent_hash(cluster, balancer["consistentHash"])


def hash_policy(consistent: dict[str, Any] | None) -> HashPolicy | None:
    """What a route to a consistent-hash cluster hashes on."""
    if not consistent:
        return None
    if "httpHeaderName" in consistent:
        return HashPolicy(header=HashPolicy.Header(header_name=consistent["httpHeaderName"]))
    if "httpCookie" in consistent:
        spec = consistent["httpCookie"]
        cookie = HashPolicy.Cookie(name=spec["name"], path=spec.get("path", ""))
        if "ttl" in spec:
            # Any ttl, 0s included, makes Envoy set the cookie when the request has none.
            cookie.ttl.CopyFrom(duration(to_seconds(spec["ttl"])))
        cookie.attributes.extend(HashPolicy.CookieAttribute(name=a["name"], value=a.get("value", ""))
                                 for a in spec.get("attributes", []))
        return HashPolicy(cookie=cookie)
    if "useSourceIp" in consistent:
        return HashPolicy(connection_properties=HashPolicy.ConnectionProperties(source_ip=consistent["useSourceIp"]))
    if "httpQueryParameterName" in consistent:
        return HashPolicy(query_parameter=HashPolicy.QueryParameter(name=consistent["httpQueryParameterName"]))
    return None
