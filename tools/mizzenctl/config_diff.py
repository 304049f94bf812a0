"""Pilot's view of a proxy against what its Envoy holds, type by type (istioctl's
`proxy-status <pod>`: "Clusters Match", "Routes Don't Match" and a diff).

Both sides are admin `ConfigDump`s.  Clusters, listeners and routes compare as JSON, which
is exact: Envoy dumps the resources it accepted with proto field names, and pilot's dump
uses the same JSON mapping.  Endpoints compare by address only, because Envoy fills in
defaults (locality, weights, health) when it stores an assignment.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from tools.mizzenctl import config_dump

__all__ = ["TYPES", "TypeDiff", "compare", "render"]

Json = dict[str, Any]
TYPES = ("CDS", "LDS", "EDS", "RDS")
WORDS = {"CDS": "Clusters", "LDS": "Listeners", "EDS": "Endpoints", "RDS": "Routes"}


@dataclass
class TypeDiff:
    type: str
    pilot_version: str
    envoy_version: str
    only_pilot: list[str] = field(default_factory=list)
    only_envoy: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    diff: list[str] = field(default_factory=list)

    @property
    def match(self) -> bool:
        return not (self.only_pilot or self.only_envoy or self.changed)

    def as_dict(self) -> Json:
        return {"type": self.type, "match": self.match, "pilot_version": self.pilot_version,
                "envoy_version": self.envoy_version, "only_in_pilot": self.only_pilot,
                "only_in_envoy": self.only_envoy, "different": self.changed}


def _endpoints(assignment: Json) -> list[str]:
    found = []
    for locality in assignment.get("endpoints", []):
        for endpoint in locality.get("lb_endpoints", []):
            socket = endpoint.get("endpoint", {}).get("address", {}).get("socket_address", {})
            found.append(f"{socket.get('address', '')}:{socket.get('port_value', 0)}")
    return sorted(found)


def _by_name(kind: str, dump: Json) -> dict[str, Any]:
    """Dynamic resources only: static ones come from the bootstrap, not from pilot."""
    if kind == "CDS":
        return {c.get("name", ""): c for c in config_dump.clusters(dump, static=False)}
    if kind == "LDS":
        return {c.get("name", ""): c for c in config_dump.listeners(dump, static=False)}
    if kind == "RDS":
        return {c.get("name", ""): c for c in config_dump.route_configs(dump, static=False)}
    endpoints = {a.get("cluster_name", ""): _endpoints(a) for a in config_dump.load_assignments(dump, static=False)}
    # Envoy lists an empty assignment for every non-EDS cluster; they carry nothing to compare.
    return {name: addresses for name, addresses in endpoints.items() if addresses}


def _lines(value: Any) -> list[str]:
    return json.dumps(value, indent=1, sort_keys=True).splitlines()


def compare(pilot: Json, envoy: Json, sent: dict[str, str]) -> list[TypeDiff]:
    """`sent`: the version pilot last sent per type (from /debug/syncz)."""
    envoy_versions = config_dump.type_versions(envoy)
    out = []
    for kind in TYPES:
        mine, theirs = _by_name(kind, pilot), _by_name(kind, envoy)
        result = TypeDiff(kind, sent.get(kind, ""), envoy_versions.get(kind, ""),
                          only_pilot=sorted(mine.keys() - theirs.keys()),
                          only_envoy=sorted(theirs.keys() - mine.keys()))
        for name in sorted(mine.keys() & theirs.keys()):
            if mine[name] != theirs[name]:
                result.changed.append(name)
                result.diff.extend(difflib.unified_diff(_lines(mine[name]), _lines(theirs[name]),
                                                        f"pilot {kind} {name}", f"envoy {kind} {name}", lineterm=""))
        out.append(result)
    return out


def render(diffs: list[TypeDiff]) -> str:
    lines = []
    for result in diffs:
        verdict = "Match" if result.match else "Don't Match"
        versions = f"pilot sent version {result.pilot_version or '-'}, Envoy has {result.envoy_version or '-'}"
        lines.append(f"{WORDS[result.type]} {verdict} ({versions})")
        for name in result.only_pilot:
            lines.append(f"  only in pilot: {name}")
        for name in result.only_envoy:
            lines.append(f"  only in Envoy: {name}")
        lines.extend(result.diff)
    return "\n".join(lines) + "\n"
