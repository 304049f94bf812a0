"""libs.envoy's shared names are Envoy's own: each type URL and options key is the full
name of the message it stands for, so a typo cannot hide in a string pilot and mizzenctl share."""

from __future__ import annotations

from envoy.admin.v3 import config_dump_shared_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

from libs.envoy import ADMIN_TYPE_PREFIX, HCM_TYPE, HTTP_OPTIONS, TCP_PROXY_TYPE, pack


def test_type_urls_are_the_messages_full_names() -> None:
    assert pack(hcm.HttpConnectionManager()).type_url == HCM_TYPE
    assert pack(tcp_proxy_pb2.TcpProxy()).type_url == TCP_PROXY_TYPE
    assert pack(config_dump_shared_pb2.ClustersConfigDump()).type_url == f"{ADMIN_TYPE_PREFIX}ClustersConfigDump"


def test_http_options_key_is_the_options_message() -> None:
    assert http_protocol_options_pb2.HttpProtocolOptions.DESCRIPTOR.full_name == HTTP_OPTIONS
