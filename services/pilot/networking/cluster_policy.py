"""DestinationRule traffic policy -> cluster settings (Istio's applyTrafficPolicy).

Which policy applies to a cluster (Istio's MergeSubsetTrafficPolicy):
- a `portLevelSettings` entry for the cluster's port replaces its policy's loadBalancer,
  connectionPool, outlierDetection and tls *as a whole*: what the entry leaves out is not
  inherited from the policy around it but falls back to the defaults;
- a subset's policy (after its own port-level entry) overrides the rule's, component by
  component: a component the subset sets replaces the rule's, one it leaves out is inherited,
  unless a port-level entry of the subset matched, which replaces all four.
Components are replaced whole, never merged field by field.

The pieces: `cluster_lb` (loadBalancer, and the route side of consistent hashing),
`cluster_pool` (connectionPool), `cluster_outlier` (outlierDetection), `cluster_tls` (tls).
"""

from __future__ import annotations

from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.route.v3 import route_components_pb2 as rc

from services.pilot.networking import cluster_lb, cluster_outlier, cluster_pool, cluster_tls

COMPONENTS = ("loadBalancer", "connectionPool", "outlierDetection", "tls")


def _for_port(policy: dict[str, Any], port: int) -> tuple[dict[str, Any], bool]:
    """The policy's components for `port`, and whether a port-level entry supplied them."""
    for entry in policy.get("portLevelSettings", []):
        if entry.get("port", {}).get("number") == port:
            return {k: entry[k] for k in COMPONENTS if k in entry}, True
    return {k: policy[k] for k in COMPONENTS if k in policy}, False


def merged_policy(rule: dict[str, Any] | None, subset_policy: dict[str, Any] | None, port: int) -> dict[str, Any]:
    """The effective policy for one `outbound|port|subset|host` cluster: a dict of (some of)
    loadBalancer, connectionPool, outlierDetection and tls."""
    merged, _ = _for_port(rule.get("trafficPolicy", {}) if rule else {}, port)
    if not subset_policy:
        return merged
    subset, port_level = _for_port(subset_policy, port)
    for component in COMPONENTS:
        if component in subset:
            merged[component] = subset[component]
        elif port_level:
            merged.pop(component, None)
    return merged


def apply_traffic_policy(cluster: cluster_pb2.Cluster, policy: dict[str, Any]) -> None:
    """Apply a merged policy; called for every outbound cluster, with `{}` when no rule applies
    (the defaults: LEAST_REQUEST, circuit breakers at 2^32-1)."""
    options = cluster_pool.protocol_options(cluster)
    pool = policy.get("connectionPool", {})
    cluster_pool.apply_h2_upgrade(options, pool.get("http", {}))
    cluster_pool.apply_connection_pool(cluster, options, pool)
    # Before the load balancer, as in Istio: locality failover needs outlier detection.
    cluster_outlier.apply_outlier_detection(cluster, policy.get("outlierDetection"))
    cluster_lb.apply_load_balancer(cluster, policy.get("loadBalancer", {}))
    cluster_tls.apply_upstream_tls(cluster, policy.get("tls"), options)
    cluster_pool.store_protocol_options(cluster, options)


def hash_policies(policy: dict[str, Any]) -> list[rc.RouteAction.HashPolicy]:
    """Route-side half of consistent hashing: what the route hashes on (the cluster side picks
    RING_HASH or MAGLEV).  Istio puts it on every route to the destination.

    Taken from the same merged policy as the cluster, so route and cluster always agree.
    Istio's route side looks for the nearest consistentHash on its own (subset port-level,
    subset, rule port-level if the destination names a port, rule), so it may add a hash
    policy for a cluster that does not hash, where it has no effect; Mizzen does not.
    """
    policy_entry = cluster_lb.hash_policy(policy.get("loadBalancer", {}).get("consistentHash"))
    return [policy_entry] if policy_entry is not None else []
