"""Server-side printing: the `meta.k8s.io` `Table` the API server answers when a client (`kubectl
get`) asks for `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.

The core types' columns and cells follow the API server's printers (pkg/printers/internalversion)
for the fields the fake stores, defaults filled in as the real server would have stored them
(a Service's type ClusterIP, a port's protocol TCP); a CRD's columns are its printer columns
(a simple JSONPath each: a list or object cell is its compact JSON, a date cell an age).  Wide
columns (priority 1) are always sent, as the real server does: `kubectl get -o wide` shows them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from tests.harness.kube_resources import PrinterColumn, ResourceType

TABLE_VERSIONS = ("meta.k8s.io/v1", "meta.k8s.io/v1beta1")
INCLUDE_OBJECT = ("Object", "Metadata", "None")

Cells = Callable[[dict[str, Any]], list[Any]]

_NAME = {"name": "Name", "type": "string", "format": "name",
         "description": "Name must be unique within a namespace.", "priority": 0}
_AGE_TEXT = "CreationTimestamp is a timestamp representing the server time when this object was created."


def _col(name: str, description: str = "", *, type_: str = "string", priority: int = 0) -> dict[str, Any]:
    return {"name": name, "type": type_, "format": "", "description": description, "priority": priority}


def human_duration(seconds: float) -> str:
    """Kubernetes' duration.HumanDuration: 45s, 3m20s, 15m, 5h10m, 2d3h, 1y20d."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes, hours = s // 60, s // 3600
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    try:
        then = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<invalid>"
    return human_duration((datetime.now(UTC) - then).total_seconds())


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _labels(selector: dict[str, Any] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((selector or {}).items())) or "<none>"


# -- the core types' printers -------------------------------------------------------------------


def _service(obj: dict[str, Any]) -> list[Any]:
    spec = obj.get("spec") or {}
    kind = spec.get("type") or "ClusterIP"
    cluster_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    external = ",".join(spec.get("externalIPs") or [])
    if kind == "LoadBalancer":
        ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        lb = sorted({i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")})
        external = ",".join([*lb, *(spec.get("externalIPs") or [])]) or "<pending>"
    elif kind == "ExternalName":
        external = spec.get("externalName", "")
    ports = ",".join((f"{p.get('port')}:{p['nodePort']}" if p.get("nodePort") else f"{p.get('port')}")
                     + f"/{p.get('protocol') or 'TCP'}" for p in spec.get("ports") or [])
    return [kind, cluster_ips[0] if cluster_ips else "<none>", external or "<none>", ports or "<none>",
            age(_meta(obj).get("creationTimestamp")), _labels(spec.get("selector"))]


def _pod_reason(obj: dict[str, Any]) -> tuple[str, int, int]:
    """STATUS, ready containers and restarts, as kubectl shows them."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    reason = status.get("reason") or status.get("phase") or ""
    ready = restarts = 0
    initializing = False
    inits = spec.get("initContainers") or []
    for i, container in enumerate(status.get("initContainerStatuses") or []):
        restarts += int(container.get("restartCount") or 0)
        state = container.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated is not None and terminated.get("exitCode", 0) == 0:
            continue
        if terminated is not None:
            reason = "Init:" + (terminated.get("reason") or f"ExitCode:{terminated.get('exitCode')}")
        elif waiting is not None and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(inits)}"
        initializing = True
        break
    if not initializing:
        restarts = 0
        for container in reversed(status.get("containerStatuses") or []):
            restarts += int(container.get("restartCount") or 0)
            state = container.get("state") or {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None:
                reason = terminated.get("reason") or f"ExitCode:{terminated.get('exitCode')}"
            elif container.get("ready") and state.get("running") is not None:
                ready += 1
    if _meta(obj).get("deletionTimestamp") and status.get("phase") not in ("Succeeded", "Failed"):
        reason = "Terminating"
    return reason, ready, restarts


def _pod(obj: dict[str, Any]) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    reason, ready, restarts = _pod_reason(obj)
    pod_ips = status.get("podIPs") or ([{"ip": status["podIP"]}] if status.get("podIP") else [])
    gates = spec.get("readinessGates") or []
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    gates_text = (f"{sum(1 for g in gates if conditions.get(g.get('conditionType')) == 'True')}/{len(gates)}"
                  if gates else "<none>")
    return [f"{ready}/{len(spec.get('containers') or [])}", reason, str(restarts),
            age(_meta(obj).get("creationTimestamp")), pod_ips[0]["ip"] if pod_ips else "<none>",
            spec.get("nodeName") or "<none>", status.get("nominatedNodeName") or "<none>", gates_text]


def _more(items: list[str]) -> str:
    if len(items) > 3:
        return f"{','.join(items[:3])} + {len(items) - 3} more..."
    return ",".join(items) or "<unset>"


def _endpoint_slice(obj: dict[str, Any]) -> list[Any]:
    ports = [str(p["port"]) if p.get("port") is not None else (p.get("name") or "*") for p in obj.get("ports") or []]
    addresses = [a for e in obj.get("endpoints") or [] for a in e.get("addresses") or []]
    return [obj.get("addressType", ""), _more(ports), _more(addresses), age(_meta(obj).get("creationTimestamp"))]


def _node(obj: dict[str, Any]) -> list[Any]:
    spec, status, labels = obj.get("spec") or {}, obj.get("status") or {}, _meta(obj).get("labels") or {}
    ready = next((c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    state = {"True": "Ready", "False": "NotReady"}.get(ready or "", "Unknown")
    if spec.get("unschedulable"):
        state += ",SchedulingDisabled"
    roles = sorted({k.removeprefix("node-role.kubernetes.io/") for k in labels
                    if k.startswith("node-role.kubernetes.io/")} | ({labels["kubernetes.io/role"]}
                                                                   if labels.get("kubernetes.io/role") else set()))
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    info = status.get("nodeInfo") or {}
    return [state, ",".join(roles) or "<none>", age(_meta(obj).get("creationTimestamp")),
            info.get("kubeletVersion", ""), addresses.get("InternalIP") or "<none>",
            addresses.get("ExternalIP") or "<none>", info.get("osImage") or "<unknown>",
            info.get("kernelVersion") or "<unknown>", info.get("containerRuntimeVersion") or "<unknown>"]


_AGE = _col("Age", _AGE_TEXT)
CORE_PRINTERS: dict[tuple[str, str], tuple[list[dict[str, Any]], Cells]] = {
    ("", "namespaces"): ([_col("Status", "The status of the namespace"), _AGE],
                         # The real server sets status.phase Active on create; the fake stores what it gets.
                         lambda o: [(o.get("status") or {}).get("phase") or "Active",
                                    age(_meta(o).get("creationTimestamp"))]),
    ("", "services"): ([_col("Type"), _col("Cluster-IP"), _col("External-IP"), _col("Port(s)"), _AGE,
                        _col("Selector", priority=1)], _service),
    ("", "pods"): ([_col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
                    _col("Status", "The aggregate status of the containers in this pod."),
                    _col("Restarts", "The number of times the containers in this pod have been restarted."),
                    _AGE, _col("IP", priority=1), _col("Node", priority=1), _col("Nominated Node", priority=1),
                    _col("Readiness Gates", priority=1)], _pod),
    ("discovery.k8s.io", "endpointslices"): ([_col("AddressType"), _col("Ports"), _col("Endpoints"), _AGE],
                                             _endpoint_slice),
    ("", "configmaps"): ([_col("Data"), _AGE],
                         lambda o: [len(o.get("data") or {}) + len(o.get("binaryData") or {}),
                                    age(_meta(o).get("creationTimestamp"))]),
    ("", "secrets"): ([_col("Type"), _col("Data"), _AGE],
                      lambda o: [o.get("type") or "Opaque", len(o.get("data") or {}),
                                 age(_meta(o).get("creationTimestamp"))]),
    ("", "serviceaccounts"): ([_col("Secrets"), _AGE],
                              lambda o: [len(o.get("secrets") or []), age(_meta(o).get("creationTimestamp"))]),
    ("", "nodes"): ([_col("Status", "The status of the node"), _col("Roles", "The roles of the node"), _AGE,
                     _col("Version"), *(_col(n, priority=1) for n in ("Internal-IP", "External-IP", "OS-Image",
                                                                       "Kernel-Version", "Container-Runtime"))],
                    _node),
}


# -- CRD printer columns -----------------------------------------------------------------------


def _lookup(obj: Any, json_path: str) -> Any:
    for part in json_path.strip(".").split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _crd_cell(column: PrinterColumn, obj: dict[str, Any]) -> Any:
    value = _lookup(obj, column.json_path)
    if value is None:
        return None
    if column.type == "date":
        return age(value) if isinstance(value, str) else None
    if column.type == "string":
        if isinstance(value, (dict, list)):
            return json.dumps(value, separators=(",", ":"))
        return ("true" if value else "false") if isinstance(value, bool) else str(value)
    if column.type == "integer" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if column.type == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if column.type == "boolean" and isinstance(value, bool):
        return value
    return None


def _crd_printer(rtype: ResourceType) -> tuple[list[dict[str, Any]], Cells]:
    definitions = [{"name": c.name, "type": c.type, "format": "", "priority": c.priority,
                    "description": c.description or f"Custom resource definition column (in JSONPath format): "
                    f"{c.json_path}"} for c in rtype.columns]
    return definitions, lambda obj: [_crd_cell(c, obj) for c in rtype.columns]


# -- the Table ---------------------------------------------------------------------------------------


def table(rtype: ResourceType, api_version: str, objects: Iterable[dict[str, Any]], *, resource_version: str,
          table_version: str = TABLE_VERSIONS[0], include_object: str = "Metadata",
          headers: bool = True) -> dict[str, Any]:
    """A Table of `objects` (served at `api_version`), one row each."""
    definitions, cells = CORE_PRINTERS.get(rtype.group_resource) or _crd_printer(rtype)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": [_meta(obj).get("name", ""), *cells(obj)]}
        if include_object == "Object":
            row["object"] = {**obj, "apiVersion": api_version, "kind": rtype.kind}
        elif include_object == "Metadata":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": table_version,
                             "metadata": _meta(obj)}
        rows.append(row)
    return {"kind": "Table", "apiVersion": table_version, "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": [_NAME, *definitions] if headers else None, "rows": rows}
