"""The bootstrap a gRPC library's xDS client reads (proxyless gRPC), naming pilot.

gRPC reads it from the file `GRPC_XDS_BOOTSTRAP` names, or from `GRPC_XDS_BOOTSTRAP_CONFIG`
itself (once per process, when the first `xds:///` channel is created).  The node follows
Istio's conventions, so pilot reads it as it reads a sidecar's: id
`sidecar~<ip>~<pod>.<namespace>~<namespace>.svc.<domain>`, metadata `GENERATOR: grpc` (what
tells pilot to answer with API listeners), `NAMESPACE`, `LABELS`, `INSTANCE_IPS`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# The env var gRPC reads the bootstrap JSON from directly.
BOOTSTRAP_CONFIG_ENV = "GRPC_XDS_BOOTSTRAP_CONFIG"
BOOTSTRAP_FILE_ENV = "GRPC_XDS_BOOTSTRAP"


def node_id(ip: str, pod: str, namespace: str, domain_suffix: str = "cluster.local") -> str:
    return f"sidecar~{ip}~{pod}.{namespace}~{namespace}.svc.{domain_suffix}"


def bootstrap(
    pilot_address: str,
    *,
    pod: str,
    namespace: str,
    ip: str = "127.0.0.1",
    labels: Mapping[str, str] | None = None,
    service_account: str = "default",
    domain_suffix: str = "cluster.local",
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The bootstrap document: one plain-text xDS server (pilot, `host:port`), xDS v3."""
    node_metadata: dict[str, Any] = {
        "GENERATOR": "grpc",
        "NAMESPACE": namespace,
        "INSTANCE_IPS": ip,
        "SERVICE_ACCOUNT": service_account,
        "WORKLOAD_NAME": pod,
    }
    if labels:
        node_metadata["LABELS"] = dict(labels)
    node_metadata.update(metadata or {})
    return {
        "xds_servers": [{
            "server_uri": pilot_address,
            "channel_creds": [{"type": "insecure"}],
            "server_features": ["xds_v3"],
        }],
        "node": {
            "id": node_id(ip, pod, namespace, domain_suffix),
            "cluster": f"{pod}.{namespace}",
            "metadata": node_metadata,
        },
    }


def environment(document: Mapping[str, Any]) -> dict[str, str]:
    """Environment variables that hand `document` to gRPC without a file."""
    return {BOOTSTRAP_CONFIG_ENV: json.dumps(document)}


def write(path: Path, document: Mapping[str, Any]) -> Path:
    """Write `document` atomically (gRPC may read it as soon as it exists); returns `path`,
    for `GRPC_XDS_BOOTSTRAP`."""
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(json.dumps(document, indent=2))
    os.replace(staging, path)
    return path
