"""Pilot's debug endpoints, shaped like Istio's /debug/* on the monitoring port.

- `/debug/syncz`: per connected proxy and xDS type, the version sent and ACKed, the nonce,
  whether an answer is awaited, the last NACK; plus the proxy's last convergence, and with
  `?warnings=true` its translation warnings.  Each proxy's `cluster_id` is the registry its
  workload is registered in (`mesh-workloads` for the local mesh's agents, `Kubernetes` for
  pods), else the CLUSTER_ID its node metadata claims; with its address, labels, service
  account, Mizzen version and Envoy admin address (what `mizzenctl` needs to reach it).
  `?format=istio` answers Istio's flat `SyncStatus` list instead.
- `/debug/config_dump?proxyID=`: what pilot last sent that proxy, in the shape of Envoy's
  admin `/config_dump` (EDS only with `include_eds=true`, as in Envoy and Istio), so the
  same tools read pilot's view and Envoy's.
- `/debug/config_origins?proxyID=`: the DestinationRule behind each cluster sent to that
  proxy (Istio keeps it in cluster metadata, as pilot does the VirtualService of a route),
  and the translation warnings of its config.
- `/debug/configz`, `/debug/registryz`: the config and services of the current push.
- `/debug/push_status`: the last pushes (version, trigger, timing, proxies synced).
- `/debug/platformz`: the services and workloads of the current push (`debug_registry`).
- `POST /debug/dryrun`: what proposed config would change in each proxy's config, as a
  diff against what pilot last sent it (`debug_dryrun`, mounted beside this router).

`proxyID` is a full node id, `<pod>.<namespace>` (Istio's proxy ID), or a pod name that
names exactly one connected proxy.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter

from libs.envoy import ADMIN_TYPE_PREFIX, CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, short_type
from services.pilot import debug_registry, envoy_json
from services.pilot.errors import AmbiguousProxy, ProxyIdMissing, ProxyNotConnected
from services.pilot.model.registry import RegistryContents
from services.pilot.networking.names import parse_outbound_cluster
from services.pilot.push_status import PushHistory, PushRecord, convergence_s, wall
from services.pilot.xds.server import AdsServer
from services.pilot.xds.stream_state import AnyConnection, Watch

# Istio's SyncStatus field prefixes per type.
ISTIO_NAMES = {CLUSTER_TYPE: "cluster", LISTENER_TYPE: "listener", ROUTE_TYPE: "route", ENDPOINT_TYPE: "endpoint"}


def _iso(monotonic_s: float) -> str | None:
    """A monotonic reading as Envoy prints times (`2026-01-02T03:04:05.678Z`); None for 'never'."""
    if not monotonic_s:
        return None
    stamp = datetime.datetime.fromtimestamp(wall(monotonic_s), tz=datetime.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


# The registries' current contents (pilot's, at the moment of asking).
Registries = Callable[[], Sequence[RegistryContents]]


def registry_index(registries: Sequence[RegistryContents]) -> dict[tuple[str, str], str]:
    """Which registry holds each workload, by (namespace, name) and by (namespace, address):
    the first registry wins, as it does a hostname in `aggregate`."""
    index: dict[tuple[str, str], str] = {}
    for contents in registries:
        for workload in contents.workloads:
            index.setdefault((workload.namespace, workload.name), contents.name)
            if workload.address:
                index.setdefault((workload.namespace, workload.address), contents.name)
    return index


def cluster_id(connection: AnyConnection, index: dict[tuple[str, str], str]) -> tuple[str, str | None]:
    """(the proxy's cluster as `proxy-status` shows it, the registry its workload is in):
    the registry when one holds the workload, else what its node metadata claims."""
    proxy = connection.proxy
    registry = index.get((proxy.namespace, proxy.pod)) or index.get((proxy.namespace, proxy.ip))
    return registry or str(proxy.metadata.get("CLUSTER_ID", "")), registry


def proxy_name(connection: AnyConnection) -> str:
    """Istio's proxy ID: `<pod>.<namespace>`."""
    return f"{connection.proxy.pod}.{connection.proxy.namespace}"


def find_connection(server: AdsServer, proxy_id: str | None) -> AnyConnection:
    if not proxy_id:
        raise ProxyIdMissing()
    connections = server.connections
    for match in (lambda c: c.proxy.id == proxy_id, lambda c: proxy_name(c) == proxy_id,
                  lambda c: c.proxy.pod == proxy_id):
        found = [c for c in connections if match(c)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise AmbiguousProxy(proxy_id, sorted(c.proxy.id for c in found))
    raise ProxyNotConnected()


# -- /debug/syncz ---------------------------------------------------------------------


def _type_state(watch: Watch) -> dict[str, Any]:
    return {
        "sent": watch.version_sent,
        "acked": watch.version_acked,
        "nonce": watch.nonce,
        "awaiting_ack": watch.awaiting_ack,
        "resources": len(watch.sent),
        "sent_at": _iso(watch.sent_at),
        "acked_at": _iso(watch.acked_at),
        "last_nack": None if watch.last_nack is None else {
            "version": watch.last_nack.version,
            "nonce": watch.last_nack.nonce,
            "error": watch.last_nack.message,
            "at": _iso(watch.last_nack.at),
        },
    }


def sync_row(connection: AnyConnection, history: PushHistory, instance: str,
             index: dict[tuple[str, str], str] | None = None) -> dict[str, Any]:
    proxy = connection.proxy
    synced = connection.synced_version
    converged = convergence_s(history.find(synced), connection.connected_at, connection.synced_at) if synced else None
    cluster, registry = cluster_id(connection, index or {})
    return {
        "proxy": proxy.id,
        "name": proxy_name(connection),
        "type": proxy.type.value,
        "cluster_id": cluster,
        "registry": registry,
        "ip": proxy.ip,
        "labels": proxy.label_map,
        "service_account": proxy.service_account,
        # The agent's Mizzen version and where its Envoy's admin listens (Mizzen's node
        # metadata; "" for a proxy not started by Mizzen's agent).
        "agent_version": str(proxy.metadata.get("MIZZEN_VERSION", "")),
        "admin": str(proxy.metadata.get("MIZZEN_ADMIN_ADDRESS", "")),
        "proxy_version": connection.client_version,
        "pilot": instance,
        "connection": connection.id,
        # GRPC (state of the world) or DELTA_GRPC: which ADS method the proxy streams on.
        "xds_api": connection.api,
        "connected_at": _iso(connection.connected_at),
        # The newest push this stream has processed (sent, or found unchanged).
        "version": connection.snapshot_version,
        # The newest version whose every response the proxy ACKed, and when; and the seconds
        # from the config change behind it to that moment (None: no change to measure from).
        "synced_version": synced or None,
        "synced_at": _iso(connection.synced_at),
        "convergence_s": None if converged is None else round(converged, 6),
        "types": {short_type(t): _type_state(w) for t, w in connection.watches.items() if w.subscribed},
    }


def istio_sync_status(connection: AnyConnection, index: dict[tuple[str, str], str] | None = None) -> dict[str, str]:
    """Istio's `SyncStatus` (pilot/pkg/xds/debug.go), empty fields omitted as Istio does."""
    row = {"cluster_id": cluster_id(connection, index or {})[0], "proxy": proxy_name(connection),
           "proxy_type": connection.proxy.type.value, "proxy_version": connection.client_version}
    for type_url, prefix in ISTIO_NAMES.items():
        watch = connection.watches[type_url]
        row[f"{prefix}_sent"] = watch.version_sent
        row[f"{prefix}_acked"] = watch.version_acked
    return {key: value for key, value in row.items() if value}


# -- /debug/config_dump ---------------------------------------------------------------


def config_dump(connection: AnyConnection, *, include_eds: bool) -> dict[str, Any]:
    """An Envoy admin `ConfigDump` of what pilot last sent this proxy: per type, the
    version sent and the resources of that response."""
    watches = connection.watches

    def entries(type_url: str, key: str) -> list[dict[str, Any]]:
        watch = watches[type_url]
        stamp = {"version_info": watch.version_sent, "last_updated": _iso(watch.sent_at)}
        return [{key: envoy_json.resource_dict(watch.sent[name]), **stamp} for name in sorted(watch.sent)]

    listeners = [{"name": state["listener"].get("name", ""), "active_state": state}
                 for state in entries(LISTENER_TYPE, "listener")]
    configs: list[dict[str, Any]] = [
        {"@type": f"{ADMIN_TYPE_PREFIX}ClustersConfigDump", "version_info": watches[CLUSTER_TYPE].version_sent,
         "dynamic_active_clusters": entries(CLUSTER_TYPE, "cluster")},
        {"@type": f"{ADMIN_TYPE_PREFIX}ListenersConfigDump", "version_info": watches[LISTENER_TYPE].version_sent,
         "dynamic_listeners": listeners},
        {"@type": f"{ADMIN_TYPE_PREFIX}RoutesConfigDump", "dynamic_route_configs": entries(ROUTE_TYPE, "route_config")},
    ]
    if include_eds:
        configs.insert(1, {"@type": f"{ADMIN_TYPE_PREFIX}EndpointsConfigDump",
                           "dynamic_endpoint_configs": entries(ENDPOINT_TYPE, "endpoint_config")})
    return {"configs": configs}


def config_origins(server: AdsServer, connection: AnyConnection) -> dict[str, Any]:
    push = server.cache.push_context
    body: dict[str, Any] = {"proxy": connection.proxy.id, "version": push.version if push else None,
                            "destination_rules": {}, "warnings": []}
    if push is None:
        return body
    for cluster in sorted(connection.watches[CLUSTER_TYPE].sent):
        parsed = parse_outbound_cluster(cluster)
        rule = push.destination_rule(parsed[2]) if parsed else None
        if rule is not None:
            body["destination_rules"][cluster] = f"{rule.name}.{rule.namespace}"
    try:
        body["warnings"] = translation_warnings(server, connection, raise_errors=True)
    except Exception as exc:
        # A debug aid must not fail the page: report what went wrong instead.
        body["error"] = repr(exc)
    return body


def translation_warnings(server: AdsServer, connection: AnyConnection, *, raise_errors: bool = False) -> list[str]:
    """What translation warned about in this proxy's config (policies it could not honour
    as written, conflicting routes, ...)."""
    try:
        snapshot = server.cache.get(connection.proxy)
    except Exception as exc:
        if raise_errors:
            raise
        return [f"its config cannot be built: {exc!r}"]
    return list(snapshot.warnings) if snapshot else []


# -- /debug/push_status ---------------------------------------------------------------


def _push(record: PushRecord) -> dict[str, Any]:
    return {
        "version": record.version,
        "trigger": record.trigger,
        "changes": record.changes,
        "changed_at": _iso(record.changed_at) if record.changed_at is not None else None,
        "started_at": _iso(record.started_at),
        "duration_s": round(record.duration_s, 6),
        "proxies": record.proxies,
    }


def push_status(server: AdsServer, history: PushHistory, instance: str, *, recent: int = 10) -> dict[str, Any]:
    last = history.last
    body: dict[str, Any] = {"pilot": instance, "last": None, "recent": [_push(r) for r in history.recent(recent)]}
    if last is not None:
        synced = [c for c in server.connections if c.synced_version == last.version]
        times = [t for c in synced if (t := convergence_s(last, c.connected_at, c.synced_at)) is not None]
        body["last"] = {**_push(last), "proxies_connected": len(server.connections),
                        "proxies_synced": len(synced),
                        "convergence_max_s": round(max(times), 6) if times else None}
    return body


def router(server: AdsServer, history: PushHistory | None = None, *, instance: str = "pilot",
           registries: Registries | None = None) -> APIRouter:
    """`registries`: the service registries' contents, to tell which one each proxy's
    workload came from (none: every proxy's cluster is what its metadata claims)."""
    api = APIRouter(prefix="/debug")
    pushes = history or PushHistory()

    @api.get("/syncz")
    async def syncz(format: str | None = None, warnings: bool = False) -> Any:
        index = registry_index(registries()) if registries is not None else {}
        if format == "istio":
            return [istio_sync_status(c, index) for c in sorted(server.connections, key=proxy_name)]
        push = server.cache.push_context
        rows = [sync_row(c, pushes, instance, index) for c in server.connections]
        if warnings:
            # Only on request: it may build the snapshot of a proxy not yet pushed to.
            for row, connection in zip(rows, server.connections, strict=True):
                row["warnings"] = translation_warnings(server, connection)
        return {"pilot": instance, "version": push.version if push else None, "at": _iso(time.monotonic()),
                "proxies": rows}

    @api.get("/configz")
    async def configz() -> dict[str, Any]:
        push = server.cache.push_context
        if push is None:
            return {"version": None, "resources": []}
        return {"version": push.version, "resources": [r.to_dict() for r in push.config.resources.values()]}

    @api.get("/registryz")
    async def registryz() -> dict[str, Any]:
        push = server.cache.push_context
        if push is None:
            return {"version": None, "services": []}
        services = []
        for service in sorted(push.services.values(), key=lambda s: s.hostname):
            services.append({
                "hostname": service.hostname,
                "namespace": service.namespace,
                "resolution": service.resolution.value,
                "meshExternal": service.mesh_external,
                "source": service.source,
                "ports": [{"name": p.name, "port": p.number, "protocol": p.protocol.value} for p in service.ports],
                "endpoints": {
                    str(p.number): [f"{e.address}:{e.port}"
                                    for e in push.endpoints.get((service.hostname, p.number), ())]
                    for p in service.ports
                },
            })
        return {"version": push.version, "services": services}

    @api.get("/config_dump")
    async def config_dump_handler(proxyID: str | None = None, include_eds: bool = False) -> dict[str, Any]:
        return config_dump(find_connection(server, proxyID), include_eds=include_eds)

    @api.get("/config_origins")
    async def config_origins_handler(proxyID: str | None = None) -> dict[str, Any]:
        return config_origins(server, find_connection(server, proxyID))

    @api.get("/push_status")
    async def push_status_handler() -> dict[str, Any]:
        return push_status(server, pushes, instance)

    api.include_router(debug_registry.router(server))
    return api
