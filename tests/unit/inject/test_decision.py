"""Istio's injection decision, rule by rule and in its order."""

from __future__ import annotations

from typing import Any

import pytest

from libs.config.label_selectors import parse_selector
from libs.inject import InjectionConfig, Values, decide

ENABLED = InjectionConfig(policy="enabled")
DISABLED = InjectionConfig(policy="disabled")


def meta(labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"labels": labels or {}, "annotations": annotations or {}}


@pytest.mark.parametrize(("metadata", "spec", "namespace", "config", "inject", "reason"), [
    (meta(), {}, "default", ENABLED, True, "policy enabled"),
    (meta(), {}, "default", DISABLED, False, "policy disabled"),
    (meta(annotations={"sidecar.istio.io/status": "{}"}), {}, "default", ENABLED, False, "already injected"),
    # Before the pod's own wish: the host network and Kubernetes' namespaces.
    (meta(labels={"sidecar.istio.io/inject": "true"}), {"hostNetwork": True}, "default", ENABLED, False,
     "host network"),
    (meta(labels={"sidecar.istio.io/inject": "true"}), {}, "kube-system", ENABLED, False, "system namespace"),
    (meta(), {}, "kube-node-lease", ENABLED, False, "system namespace"),
    (meta(annotations={"sidecar.istio.io/inject": "yes"}), {}, "default", DISABLED, True, "annotation"),
    (meta(annotations={"sidecar.istio.io/inject": "false"}), {}, "default", ENABLED, False, "annotation"),
    # Any word but YAML's trues means no, as in Istio.
    (meta(annotations={"sidecar.istio.io/inject": "please"}), {}, "default", ENABLED, False, "=please"),
    # The label wins over the annotation.
    (meta(labels={"sidecar.istio.io/inject": "false"}, annotations={"sidecar.istio.io/inject": "true"}), {},
     "default", ENABLED, False, "label"),
    (meta(labels={"sidecar.istio.io/inject": "on"}, annotations={"sidecar.istio.io/inject": "false"}), {},
     "default", DISABLED, True, "label"),
])
def test_rules(metadata: dict[str, Any], spec: dict[str, Any], namespace: str, config: InjectionConfig,
               inject: bool, reason: str) -> None:
    decision = decide(metadata, spec, namespace, config)
    assert decision.inject is inject
    assert reason in decision.reason


NEVER = parse_selector({"matchLabels": {"openshift.io/build.name": "x"}}, "neverInjectSelector[0]")
ALWAYS = parse_selector({"matchExpressions": [{"key": "team", "operator": "In", "values": ["mesh"]}]},
                        "alwaysInjectSelector[0]")


def test_never_selector_comes_before_always_and_policy() -> None:
    config = InjectionConfig(policy="enabled", never_inject=(NEVER,), always_inject=(ALWAYS,))
    both = meta(labels={"openshift.io/build.name": "x", "team": "mesh"})
    assert decide(both, {}, "default", config).reason == "the pod's labels match neverInjectSelector[0]"
    # The pod's explicit wish beats both selectors.
    explicit = meta(labels={"openshift.io/build.name": "x", "sidecar.istio.io/inject": "true"})
    assert decide(explicit, {}, "default", config).inject


def test_always_selector_beats_a_disabled_policy() -> None:
    config = InjectionConfig(policy="disabled", always_inject=(ALWAYS,))
    assert decide(meta(labels={"team": "mesh"}), {}, "default", config).inject
    assert not decide(meta(labels={"team": "web"}), {}, "default", config).inject


def test_an_empty_selector_matches_nothing() -> None:
    config = InjectionConfig(policy="disabled", always_inject=(parse_selector({}, "alwaysInjectSelector[0]"),))
    assert not decide(meta(labels={"app": "x"}), {}, "default", config).inject


@pytest.mark.parametrize(("labels", "revision", "inject", "reason"), [
    ({"istio-injection": "enabled"}, "", True, "policy enabled"),
    ({"istio-injection": "disabled", "istio.io/rev": "default"}, "", False, "istio-injection=disabled"),
    ({"istio.io/rev": "default"}, "", True, "policy enabled"),
    ({"istio.io/rev": "canary"}, "canary", True, "policy enabled"),
    ({"istio.io/rev": "canary"}, "", False, "selects revision 'canary'"),
    # istio-injection=enabled wins over a revision label, as in Istio.
    ({"istio-injection": "enabled", "istio.io/rev": "canary"}, "", True, "policy enabled"),
    ({}, "", False, "not labelled"),
])
def test_namespace_policy(labels: dict[str, str], revision: str, inject: bool, reason: str) -> None:
    config = InjectionConfig(values=Values(revision=revision))
    decision = decide(meta(), {}, "shop", config, namespace_labels=labels)
    assert (decision.inject, reason in decision.reason) == (inject, True), decision.reason


def test_a_pod_that_asks_is_injected_in_a_namespace_that_did_not_opt_in() -> None:
    decision = decide(meta(labels={"sidecar.istio.io/inject": "true"}), {}, "shop", ENABLED, namespace_labels={})
    assert decision.inject
