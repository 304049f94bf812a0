"""Envoy's extension names and config type URLs that more than one part of Mizzen writes
or reads: pilot's translation, the agent's bootstrap and mizzenctl's reading of config
dumps must agree on each, so each is spelled here once.

A name used by one module only stays beside its use (e.g. `envoy.filters.http.fault`
in `services/pilot/networking/route_actions.py`).
"""

from __future__ import annotations

# Filters, by the `name` Envoy registers them under.
HCM_FILTER = "envoy.filters.network.http_connection_manager"
TCP_PROXY_FILTER = "envoy.filters.network.tcp_proxy"
RBAC_NETWORK = "envoy.filters.network.rbac"
ROUTER_FILTER = "envoy.filters.http.router"
RBAC_HTTP = "envoy.filters.http.rbac"
TLS_INSPECTOR = "envoy.filters.listener.tls_inspector"

# Transport sockets.
TLS_SOCKET = "envoy.transport_sockets.tls"

# A cluster's `typed_extension_protocol_options` key for its upstream HTTP settings
# (HTTP/2 to pilot and the SDS socket, connection pools, h2 upgrades).
HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

# Type URLs of filter configs, as `typed_config` and config dumps carry them.
HCM_TYPE = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
TCP_PROXY_TYPE = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
# The prefix of every section of Envoy's `/config_dump` (`...ClustersConfigDump`, ...).
ADMIN_TYPE_PREFIX = "type.googleapis.com/envoy.admin.v3."
