"""A file of Bootstrap fields merged into the generated bootstrap, as Istio's
ISTIO_BOOTSTRAP_OVERRIDE does: extra static listeners and clusters, stats settings.

The file is JSON or YAML in Envoy's own field names.  Typed configs (`"@type": ...`)
resolve against the protobuf modules imported here, which cover what an override
usually holds: listeners with HTTP connection managers, TLS, TCP proxy.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401 (registers the type)
from envoy.extensions.filters.network.http_connection_manager.v3 import (  # noqa: F401 (registers the type)
    http_connection_manager_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2  # noqa: F401 (registers the type)
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2  # noqa: F401 (registers the type)
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401 (registers the type)
from google.protobuf import json_format

from services.agent.errors import BootstrapOverrideError


def load_override(path: Path) -> bootstrap_pb2.Bootstrap:
    try:
        text = path.read_text()
    except OSError as exc:
        raise BootstrapOverrideError(str(path), f"cannot be read: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BootstrapOverrideError(str(path), f"is not valid JSON or YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise BootstrapOverrideError(str(path), "must hold a mapping of Bootstrap fields")
    try:
        return json_format.ParseDict(data, bootstrap_pb2.Bootstrap())
    except json_format.ParseError as exc:
        raise BootstrapOverrideError(str(path), f"is not an Envoy Bootstrap: {exc}") from exc
