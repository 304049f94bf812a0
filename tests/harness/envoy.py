"""Talking to a real Envoy's admin interface."""

from __future__ import annotations

from typing import Any

from libs.envoy import CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE
from tests.harness.http import HTTP


class EnvoyAdmin:
    def __init__(self, host: str, port: int) -> None:
        self.base = f"http://{host}:{port}"

    def ready(self) -> bool:
        response = HTTP.get(f"{self.base}/ready", timeout=1.0)
        return response.status_code == 200 and response.text.strip() == "LIVE"

    def config_dump(self, resource: str | None = None) -> dict[str, Any]:
        params = {"include_eds": "true"}
        if resource:
            params["resource"] = resource
        response = HTTP.get(f"{self.base}/config_dump", params=params, timeout=5.0)
        response.raise_for_status()
        return response.json()

    def stats(self, filter_regex: str = "") -> dict[str, int]:
        response = HTTP.get(f"{self.base}/stats", params={"filter": filter_regex} if filter_regex else None,
                            timeout=5.0)
        response.raise_for_status()
        stats: dict[str, int] = {}
        for line in response.text.splitlines():
            name, _, value = line.partition(": ")
            if value.strip().isdigit():
                stats[name] = int(value)
        return stats

    def draining(self) -> int:
        """Listeners and filter chains replaced but still serving their old connections:
        a request on one of those meets the config before the change."""
        stats = self.stats(r"^listener_manager\.total_(listeners|filter_chains)_draining$")
        return sum(stats.values())

    def dynamic(self, type_url: str) -> list[dict[str, Any]]:
        """Active dynamic resources of one type, each with its version_info."""
        dump = self.config_dump()
        wanted = {
            CLUSTER_TYPE: ("type.googleapis.com/envoy.admin.v3.ClustersConfigDump", "dynamic_active_clusters",
                           "cluster"),
            LISTENER_TYPE: ("type.googleapis.com/envoy.admin.v3.ListenersConfigDump", "dynamic_listeners",
                            "active_state"),
            ROUTE_TYPE: ("type.googleapis.com/envoy.admin.v3.RoutesConfigDump", "dynamic_route_configs",
                         "route_config"),
        }[type_url]
        for config in dump["configs"]:
            if config["@type"] == wanted[0]:
                return list(config.get(wanted[1], []))
        return []

    def route_config(self, name: str) -> dict[str, Any] | None:
        for entry in self.dynamic(ROUTE_TYPE):
            if entry["route_config"]["name"] == name:
                return entry
        return None

    def cluster_names(self) -> set[str]:
        return {entry["cluster"]["name"] for entry in self.dynamic(CLUSTER_TYPE)}
