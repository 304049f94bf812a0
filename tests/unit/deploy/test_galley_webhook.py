"""galley's ValidatingWebhookConfiguration in deploy/kubernetes: its rules send the API server's
creates and updates of exactly the kinds galley serves (the CRDs of crds.yaml, in every
version), to paths galley's webhook answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from libs.config import supported_kinds
from services.galley import webhook

BASE = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes" / "base"


def configuration() -> dict[str, Any]:
    [document] = [d for d in yaml.safe_load_all((BASE / "galley-webhook.yaml").read_text()) if d]
    assert document["kind"] == "ValidatingWebhookConfiguration"
    return document


def test_the_rules_match_each_kind_galley_serves_once_in_every_version() -> None:
    matched: dict[tuple[str, str], list[str]] = {}
    for hook in configuration()["webhooks"]:
        for rule in hook["rules"]:
            assert rule["operations"] == ["CREATE", "UPDATE"], (hook["name"], rule)
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    assert (group, resource) not in matched, f"{group}/{resource} is matched twice"
                    matched[(group, resource)] = rule["apiVersions"]
    kinds = {(info.group, info.plural): info for info in supported_kinds() if info.group}
    assert set(matched) == set(kinds), (
        f"not validated: {sorted(set(kinds) - set(matched))}; not galley's: {sorted(set(matched) - set(kinds))}")
    for key, versions in matched.items():
        assert versions == ["*"] or set(kinds[key].versions) <= set(versions), (key, versions)


def test_the_crds_and_the_rules_agree() -> None:
    crds = {(d["spec"]["group"], d["spec"]["names"]["plural"])
            for d in yaml.safe_load_all((BASE / "crds.yaml").read_text()) if d}
    rules = {(g, r) for hook in configuration()["webhooks"] for rule in hook["rules"]
             for g in rule["apiGroups"] for r in rule["resources"]}
    assert crds == rules


def test_each_webhook_calls_galley_over_its_service_and_fails_closed() -> None:
    document = configuration()
    assert document["metadata"]["name"] == "istio-galley"
    assert [h["name"] for h in document["webhooks"]] == ["pilot.validation.istio.io", "mixer.validation.istio.io"]
    for hook in document["webhooks"]:
        client = hook["clientConfig"]
        assert client["service"] == {"name": "istio-galley", "namespace": "istio-system", "port": 443,
                                     "path": client["service"]["path"]}
        assert client["service"]["path"] in webhook.PATHS
        # citadel fills it in; a caBundle here would be overwritten, or clear citadel's on re-apply.
        assert "caBundle" not in client
        assert (hook["failurePolicy"], hook["sideEffects"], hook["admissionReviewVersions"]) == (
            "Fail", "None", ["v1"])
        assert "namespaceSelector" not in hook and "objectSelector" not in hook
