"""An Envoy admin `ConfigDump` as plain JSON (Envoy's `/config_dump` or pilot's
`/debug/config_dump`, which share the shape): the resources of each type, and versions."""

from __future__ import annotations

from typing import Any

from libs.envoy import ADMIN_TYPE_PREFIX

__all__ = ["clusters", "listeners", "load_assignments", "route_configs", "section", "type_versions",
           "version_key"]

Json = dict[str, Any]


def section(dump: Json, name: str) -> Json:
    """The `configs` entry of one kind, e.g. `ClustersConfigDump` ({} when absent)."""
    return next((c for c in dump.get("configs", []) if c.get("@type") == f"{ADMIN_TYPE_PREFIX}{name}"), {})


def clusters(dump: Json, *, static: bool = True) -> list[Json]:
    part = section(dump, "ClustersConfigDump")
    found = [e["cluster"] for e in part.get("dynamic_active_clusters", []) if "cluster" in e]
    if static:
        found += [e["cluster"] for e in part.get("static_clusters", []) if "cluster" in e]
    return found


def listeners(dump: Json, *, static: bool = True) -> list[Json]:
    """Active listeners (warming and draining ones are not serving this config yet, or any more)."""
    part = section(dump, "ListenersConfigDump")
    found = [e["active_state"]["listener"] for e in part.get("dynamic_listeners", [])
             if "listener" in e.get("active_state", {})]
    if static:
        found += [e["listener"] for e in part.get("static_listeners", []) if "listener" in e]
    return found


def route_configs(dump: Json, *, static: bool = True) -> list[Json]:
    part = section(dump, "RoutesConfigDump")
    found = [e["route_config"] for e in part.get("dynamic_route_configs", []) if "route_config" in e]
    if static:
        found += [e["route_config"] for e in part.get("static_route_configs", []) if "route_config" in e]
    return found


def load_assignments(dump: Json, *, static: bool = True) -> list[Json]:
    part = section(dump, "EndpointsConfigDump")
    found = [e["endpoint_config"] for e in part.get("dynamic_endpoint_configs", []) if "endpoint_config" in e]
    if static:
        found += [e["endpoint_config"] for e in part.get("static_endpoint_configs", []) if "endpoint_config" in e]
    return found


def version_key(version: str) -> tuple[int, ...]:
    """Mizzen versions are KV revisions, `12` or `12.3` (config.registry); older sorts first."""
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return ()


def _newest(versions: list[str]) -> str:
    versions = [v for v in versions if v]
    return max(versions, key=version_key) if versions else ""


def type_versions(dump: Json) -> dict[str, str]:
    """The version of each xDS type a dump holds.  CDS and LDS carry one per type; RDS and EDS
    only per resource (Envoy bumps a resource's version only when its content changes), so
    theirs is the newest among their resources."""
    routes = section(dump, "RoutesConfigDump").get("dynamic_route_configs", [])
    endpoints = section(dump, "EndpointsConfigDump").get("dynamic_endpoint_configs", [])
    return {
        "CDS": section(dump, "ClustersConfigDump").get("version_info", ""),
        "LDS": section(dump, "ListenersConfigDump").get("version_info", ""),
        "EDS": _newest([e.get("version_info", "") for e in endpoints]),
        "RDS": _newest([e.get("version_info", "") for e in routes]),
    }
