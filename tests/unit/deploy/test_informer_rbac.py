"""The RBAC in deploy/kubernetes lets each service list and watch what its informers
follow: pilot's Kubernetes registry and galley's CRD source.  The fake API server does no
RBAC, so an informer added without its rule would pass every other test and fail on a
real cluster with 403."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from libs.config import supported_kinds
from libs.kube import ApiGroup
from services.galley.sources.kubernetes import plan_watches
from services.pilot.kube_registry import INFORMERS

BASE = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes" / "base"
Grant = tuple[str, str, str, str | None]  # group, resource, verb, namespace (None: cluster-wide)


def grants(manifest: str) -> set[Grant]:
    found: set[Grant] = set()
    for document in yaml.safe_load_all((BASE / manifest).read_text()):
        if not document or document["kind"] not in ("ClusterRole", "Role"):
            continue
        namespace = document["metadata"].get("namespace") if document["kind"] == "Role" else None
        for rule in document["rules"]:
            found |= {(group, resource, verb, namespace) for group in rule["apiGroups"]
                      for resource in rule["resources"] for verb in rule["verbs"]}
    return found


def allowed(granted: set[Grant], group: str, resource: str, verb: str, namespace: str | None) -> bool:
    """As the API server matches: a ClusterRole anywhere, a Role only in its namespace;
    `*` for any resource of the group."""
    return any((group, name, verb, scope) in granted for name in (resource, "*")
               for scope in {None, namespace})


def test_pilot_may_follow_every_informer() -> None:
    granted = grants("pilot.yaml")
    missing = [(i.ref.group, i.ref.plural, verb) for i in INFORMERS for verb in ("list", "watch")
               if not allowed(granted, i.ref.group, i.ref.plural, verb, None)]
    assert missing == []
    assert {i.ref.plural for i in INFORMERS} >= {"services", "endpointslices", "pods", "nodes", "namespaces"}


def test_galley_may_follow_every_kind_it_serves() -> None:
    groups: dict[str, Any] = {}
    for info in supported_kinds():
        if info.group:
            known = groups.setdefault(info.group, set())
            known.update(info.versions)
    served = {name: ApiGroup(name, tuple(sorted(versions)), sorted(versions)[0]) for name, versions in groups.items()}
    watches, missing_kinds = plan_watches(supported_kinds(), served)
    assert missing_kinds == []
    granted = grants("galley.yaml")
    missing = [(w.kind, w.ref.plural, verb, w.namespace) for w in watches for verb in ("list", "watch")
               if not allowed(granted, w.ref.group, w.ref.plural, verb, w.namespace)]
    assert missing == []
