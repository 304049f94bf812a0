"""DestinationRule traffic policy -> cluster settings.

Istio's precedence: a subset's policy overrides the rule's, and a `portLevelSettings`
entry for the cluster's port overrides the policy it sits in, field by field
(loadBalancer, connectionPool, outlierDetection, tls).
"""

from __future__ import annotations

from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.route.v3 import route_components_pb2 as rc

_SIMPLE_LB = {
    "ROUND_ROBIN": cluster_pb2.Cluster.ROUND_ROBIN,
    "LEAST_CONN": cluster_pb2.Cluster.LEAST_REQUEST,
    "LEAST_REQUEST": cluster_pb2.Cluster.LEAST_REQUEST,
    "RANDOM": cluster_pb2.Cluster.RANDOM,
    "UNSPECIFIED": cluster_pb2.Cluster.ROUND_ROBIN,
}
_POLICY_FIELDS = ("loadBalancer", "connectionPool", "outlierDetection", "tls")


def _port_level(policy: dict[str, Any], port: int) -> dict[str, Any]:
    merged = {k: v for k, v in policy.items() if k in _POLICY_FIELDS}
    for entry in policy.get("portLevelSettings", []):
        if entry.get("port", {}).get("number") == port:
            merged.update({k: v for k, v in entry.items() if k in _POLICY_FIELDS})
    return merged


def merged_policy(rule: dict[str, Any] | None, subset_policy: dict[str, Any] | None, port: int) -> dict[str, Any]:
    """The effective policy for one cluster (rule, then subset, each with port-level overrides)."""
    merged: dict[str, Any] = {}
    if rule and "trafficPolicy" in rule:
        merged.update(_port_level(rule["trafficPolicy"], port))
    if subset_policy:
        merged.update(_port_level(subset_policy, port))
    return merged


def apply_traffic_policy(cluster: cluster_pb2.Cluster, policy: dict[str, Any]) -> None:
    balancer = policy.get("loadBalancer", {})
    if "simple" in balancer and cluster.type != cluster_pb2.Cluster.ORIGINAL_DST:
        if balancer["simple"] == "PASSTHROUGH":
            cluster.type = cluster_pb2.Cluster.ORIGINAL_DST
            cluster.lb_policy = cluster_pb2.Cluster.CLUSTER_PROVIDED
            cluster.ClearField("eds_cluster_config")
        else:
            cluster.lb_policy = _SIMPLE_LB[balancer["simple"]]


def hash_policies(policy: dict[str, Any]) -> list[rc.RouteAction.HashPolicy]:
    """Route-side half of consistent hashing: what the route hashes on (the cluster side
    picks RING_HASH or MAGLEV).  Istio puts these on every route to the destination."""
    consistent = policy.get("loadBalancer", {}).get("consistentHash")
    if not consistent:
        return []
    if "httpHeaderName" in consistent:
        return [rc.RouteAction.HashPolicy(header=rc.RouteAction.HashPolicy.Header(
            header_name=consistent["httpHeaderName"]))]
    return []
