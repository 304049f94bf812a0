"""pilot's ClusterRole in deploy/kubernetes lets each informer of its Kubernetes registry
list and watch what it follows: an informer added without its rule would fail on a real
API server with 403 while the fake one (which does no RBAC) is happy."""

from __future__ import annotations

from pathlib import Path

import yaml

from services.pilot.kube_registry import INFORMERS

MANIFEST = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes" / "base" / "pilot.yaml"


def test_the_cluster_role_covers_every_informer() -> None:
    [role] = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d and d["kind"] == "ClusterRole"]
    granted = {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    missing = [(i.ref.group, i.ref.plural, verb) for i in INFORMERS for verb in ("list", "watch")
               if (i.ref.group, i.ref.plural, verb) not in granted]
    assert missing == []
    assert {i.ref.plural for i in INFORMERS} >= {"services", "endpointslices", "pods", "nodes", "namespaces"}
