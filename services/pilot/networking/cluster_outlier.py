"""DestinationRule `outlierDetection` -> the cluster's outlier_detection and panic threshold
(Istio's applyOutlierDetection)."""

from __future__ import annotations

from typing import Any, TypeAlias

from envoy.config.cluster.v3 import cluster_pb2, outlier_detection_pb2

from libs.config.durations import to_seconds
from libs.envoy import duration

OutlierDetection: TypeAlias = outlier_detection_pb2.OutlierDetection


def _consecutive(count: int, value: Any, enforcing: Any) -> None:
    """A consecutive-failure detector: the count, enforced always, or switched off at 0."""
    value.value = count
    enforcing.value = 100 if count > 0 else 0


def outlier_detection(outlier: dict[str, Any]) -> OutlierDetection:
    # Success-rate ejection needs request volumes a small service never reaches: off.
    out = OutlierDetection(enforcing_success_rate={"value": 0})
    if outlier.get("consecutiveErrors", 0) > 0:
        # The deprecated field counted gateway errors (502, 503, 504) only (istio/api#617).
        _consecutive(outlier["consecutiveErrors"], out.consecutive_gateway_failure,
                     out.enforcing_consecutive_gateway_failure)
        out.enforcing_consecutive_5xx.value = 0
    if "consecutive5xxErrors" in outlier:
        _consecutive(outlier["consecutive5xxErrors"], out.consecutive_5xx, out.enforcing_consecutive_5xx)
    if "consecutiveGatewayErrors" in outlier:
        _consecutive(outlier["consecutiveGatewayErrors"], out.consecutive_gateway_failure,
                     out.enforcing_consecutive_gateway_failure)
    if "interval" in outlier:
        out.interval.CopyFrom(duration(to_seconds(outlier["interval"])))
    if "baseEjectionTime" in outlier:
        out.base_ejection_time.CopyFrom(duration(to_seconds(outlier["baseEjectionTime"])))
    if outlier.get("maxEjectionPercent", 0) > 0:
        out.max_ejection_percent.value = outlier["maxEjectionPercent"]
    if outlier.get("splitExternalLocalOriginErrors"):
        out.split_external_local_origin_errors = True
        if outlier.get("consecutiveLocalOriginFailures", 0) > 0:
            _consecutive(outlier["consecutiveLocalOriginFailures"], out.consecutive_local_origin_failure,
                         out.enforcing_consecutive_local_origin_failure)
        out.enforcing_local_origin_success_rate.value = 0
    return out


def apply_outlier_detection(cluster: cluster_pb2.Cluster, outlier: dict[str, Any] | None) -> None:
    if outlier is None:
        return
    cluster.outlier_detection.CopyFrom(outlier_detection(outlier))
    # Istio sets the panic threshold whenever outlier detection is on, to minHealthPercent or
    # 0: with few endpoints Envoy's default (50%) would send traffic to ejected hosts.
    cluster.common_lb_config.healthy_panic_threshold.value = outlier.get("minHealthPercent", 0)
