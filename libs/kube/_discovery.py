"""API discovery: which versions of a group the server serves, and which one to use.

Istio serves each CRD in several versions (v1alpha3, v1beta1, v1) over one stored object, so
watching every version would report each object once per version.  A client watches one:
the group's preferred version when it can read it, else the highest-priority served version
it supports, ranked as Kubernetes ranks versions (GA > beta > alpha, then by number).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")
_STABILITY = {None: 0, "beta": 1, "alpha": 2}


@dataclass(frozen=True, slots=True)
class ApiGroup:
    """One API group as discovery reports it."""

    name: str
    versions: tuple[str, ...]
    preferred: str


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key: the version Kubernetes would prefer sorts first.

    v1 < v1beta2 < v1beta1 < v1alpha1; versions that are not Kubernetes-shaped sort last,
    alphabetically (as `CompareKubeAwareVersionStrings` does)."""
    match = _KUBE_VERSION.match(version)
    if match is None:
        return (3, 0, 0, version)
    major, stability, minor = match.groups()
    return (_STABILITY[stability], -int(major), -int(minor or 0), "")


def choose_version(supported: Iterable[str], group: ApiGroup | None) -> str | None:
    """The version of `group` to watch, among the `supported` ones; None if none is served."""
    if group is None:
        return None
    wanted = set(supported)
    if group.preferred in wanted:
        return group.preferred
    served = sorted((v for v in group.versions if v in wanted), key=version_priority)
    return served[0] if served else None


def parse_group_list(body: Mapping[str, Any]) -> dict[str, ApiGroup]:
    """An `APIGroupList` (GET /apis) by group name."""
    groups: dict[str, ApiGroup] = {}
    for entry in body.get("groups") or ():
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        versions = tuple(str(v["version"]) for v in entry.get("versions") or () if isinstance(v, dict)
                         and "version" in v)
        preferred = entry.get("preferredVersion")
        chosen = str(preferred["version"]) if isinstance(preferred, dict) and "version" in preferred else ""
        if not chosen and versions:
            chosen = sorted(versions, key=version_priority)[0]
        groups[entry["name"]] = ApiGroup(entry["name"], versions, chosen)
    return groups
