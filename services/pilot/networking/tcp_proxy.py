"""tcp_proxy filters: one destination, or several by weight."""

from __future__ import annotations

from envoy.config.listener.v3 import listener_components_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from libs.envoy import TCP_PROXY_FILTER, pack
from services.pilot.model.mesh import MeshConfig
from services.pilot.model.telemetry import NO_TELEMETRY, TelemetryView
from services.pilot.networking.observability import observe_tcp


def tcp_proxy_filter(stat_prefix: str, clusters: list[tuple[str, int]], *, mesh: MeshConfig | None = None,
                     inbound: bool = False, view: TelemetryView = NO_TELEMETRY) -> listener_components_pb2.Filter:
    """`clusters`: (name, weight); a single one ignores its weight.  With `mesh`, the
    connections are logged as the mesh config asks (`observability`)."""
    proxy = tcp_proxy_pb2.TcpProxy(stat_prefix=stat_prefix)
    if mesh is not None:
        observe_tcp(proxy, mesh, inbound=inbound, view=view)
    if len(clusters) == 1:
        proxy.cluster = clusters[0][0]
    else:
        for name, weight in clusters:
            if weight > 0:
                proxy.weighted_clusters.clusters.add(name=name, weight=weight)
    return listener_components_pb2.Filter(name=TCP_PROXY_FILTER, typed_config=pack(proxy))
