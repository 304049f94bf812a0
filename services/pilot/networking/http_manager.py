"""The HTTP connection manager that every HTTP listener of pilot's carries."""

from __future__ import annotations

from collections.abc import Sequence

from envoy.config.core.v3 import config_source_pb2
from envoy.config.listener.v3 import listener_components_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from google.protobuf import wrappers_pb2

from libs.envoy import HCM_FILTER, ROUTER_FILTER, duration, pack
from services.pilot.networking.route_actions import CORS_FILTER, FAULT_FILTER


def http_connection_manager(
    stat_prefix: str,
    *,
    rds: str | None = None,
    route_config: route_pb2.RouteConfiguration | None = None,
    use_remote_address: bool = False,
    security_filters: Sequence[hcm.HttpFilter] = (),
    xff_num_trusted_hops: int = 0,
) -> hcm.HttpConnectionManager:
    manager = hcm.HttpConnectionManager(
        stat_prefix=stat_prefix,
        codec_type=hcm.HttpConnectionManager.AUTO,
        # Istio: trust the hops before us to set x-forwarded-for only at the edge.
        use_remote_address=wrappers_pb2.BoolValue(value=use_remote_address),
        # Istio's default path normalization (BASE): RFC 3986 only, slashes kept as sent.
        normalize_path=wrappers_pb2.BoolValue(value=True),
        path_with_escaped_slashes_action=hcm.HttpConnectionManager.KEEP_UNCHANGED,
        # Istio turns off Envoy's 5-minute stream idle timeout; route timeouts bound requests.
        stream_idle_timeout=duration(0),
        xff_num_trusted_hops=xff_num_trusted_hops,
    )
    manager.upgrade_configs.add(upgrade_type="websocket")
    # Istio's order: authentication and authorization first (`security`), then fault and
    # CORS, which act only on routes that configure them (typed_per_filter_config), then the router.
    manager.http_filters.extend(security_filters)
    manager.http_filters.add(name=FAULT_FILTER).typed_config.CopyFrom(pack(fault_pb2.HTTPFault()))
    manager.http_filters.add(name=CORS_FILTER).typed_config.CopyFrom(pack(cors_pb2.Cors()))
    manager.http_filters.add(name=ROUTER_FILTER).typed_config.CopyFrom(pack(router_pb2.Router()))
    if rds is not None:
        manager.rds.route_config_name = rds
        manager.rds.config_source.ads.SetInParent()
        manager.rds.config_source.resource_api_version = config_source_pb2.V3
        # Istio: wait for the route configuration rather than serve without it after 15 s.
        manager.rds.config_source.initial_fetch_timeout.CopyFrom(duration(0))
    elif route_config is not None:
        manager.route_config.CopyFrom(route_config)
    return manager


def hcm_filter(manager: hcm.HttpConnectionManager) -> listener_components_pb2.Filter:
    return listener_components_pb2.Filter(name=HCM_FILTER, typed_config=pack(manager))
