"""Mixer's config resolved, pure: which handler and instance each rule reference names, in
every syntax Istio 1.0/1.1 wrote them; which rules may apply to a workload before any
request arrives; what a dangling reference leaves behind; and the quota charges bound to a
service.  What the policy service does with the result is in tests/unit/policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from libs.cexl import partial
from libs.config import Resource, parse_text
from libs.config.directory import ServiceName
from libs.mixer import MixerConfig, QuotaCharge, Rule, build

# Istio's Bookinfo policy samples, as Istio shipped them.
SAMPLES = Path(__file__).resolve().parents[3] / "samples" / "bookinfo" / "policy"


def doc(kind: str, name: str, spec: str, namespace: str = "default") -> str:
    return (f"apiVersion: config.istio.io/v1alpha2\nkind: {kind}\n"
            f"metadata: {{name: {name}, namespace: {namespace}}}\nspec: {spec}\n")


def resources(*documents: str) -> list[Resource]:
    result = parse_text("---\n".join(documents), "test")
    assert result.errors() == []
    return [resource for _, resource in result.resources]


def config(*documents: str) -> MixerConfig:
    return build(resources(*documents))


def rule(handler: str, instance: str, *, match: str = "", namespace: str = "default", name: str = "r") -> str:
    when = f"match: '{match}', " if match else ""
    return doc("rule", name, f"{{{when}actions: [{{handler: '{handler}', instances: ['{instance}']}}]}}", namespace)


def only_rule(mixer: MixerConfig) -> Rule:
    [found] = mixer.rules
    return found


# A generic (1.1) and a per-kind (1.0) handler and instance of the same name, in the rule's
# namespace and in istio-system: each reference syntax must pick exactly one of them.
EVERY_KIND = [
    *(doc("handler", "deny", "{compiledAdapter: denier, params: {status: {code: 7, message: generic}}}", ns)
      for ns in ("default", "istio-system")),
    *(doc("denier", "deny", "{status: {code: 7, message: typed}}", ns) for ns in ("default", "istio-system")),
    *(doc("instance", "nothing", "{compiledTemplate: checknothing}", ns) for ns in ("default", "istio-system")),
    *(doc("checknothing", "nothing", "{}", ns) for ns in ("default", "istio-system")),
]


@pytest.mark.parametrize(("reference", "resolved"), [
    ("deny", "deny.handler.default"),
    ("deny.handler", "deny.handler.default"),
    ("deny.denier", "deny.denier.default"),
    ("deny.istio-system", "deny.handler.istio-system"),
    ("deny.handler.istio-system", "deny.handler.istio-system"),
    ("deny.denier.istio-system", "deny.denier.istio-system"),
])
def test_handler_references_resolve_in_every_syntax(reference: str, resolved: str) -> None:
    mixer = config(*EVERY_KIND, rule(reference, "nothing"))
    [action] = only_rule(mixer).actions
    assert mixer.problems == []
    assert action.handler.name == resolved
    assert action.handler.adapter == "denier"
    assert action.handler.params["status"]["message"] == ("typed" if ".denier" in reference else "generic")


@pytest.mark.parametrize(("reference", "resolved", "template"), [
    ("nothing", "nothing.instance.default", "checknothing"),
    ("nothing.instance", "nothing.instance.default", "checknothing"),
    ("nothing.checknothing", "nothing.checknothing.default", "checknothing"),
    ("nothing.istio-system", "nothing.instance.istio-system", "checknothing"),
    ("nothing.instance.istio-system", "nothing.instance.istio-system", "checknothing"),
    ("nothing.checknothing.istio-system", "nothing.checknothing.istio-system", "checknothing"),
])
def test_instance_references_resolve_in_every_syntax(reference: str, resolved: str, template: str) -> None:
    mixer = config(*EVERY_KIND, rule("deny", reference))
    [action] = only_rule(mixer).actions
    assert mixer.problems == []
    [instance] = action.instances
    assert (instance.name, instance.short_name, instance.template) == (resolved, "nothing", template)


def test_generic_kinds_take_adapter_template_and_params_from_their_spec() -> None:
    mixer = config(
        doc("handler", "whitelist", "{compiledAdapter: listchecker, params: {overrides: [v1], blacklist: false}}"),
        doc("instance", "version", "{compiledTemplate: listentry, params: {value: 'source.labels[\"version\"]'}}"),
        rule("whitelist", "version"))
    [action] = only_rule(mixer).actions
    assert action.handler.adapter == "listchecker"
    assert action.handler.params == {"overrides": ["v1"], "blacklist": False}
    assert action.instances[0].template == "listentry"
    assert action.instances[0].params == {"value": 'source.labels["version"]'}


def test_per_kind_resources_are_their_own_params() -> None:
    mixer = config(doc("listchecker", "whitelist", "{overrides: [v1], blacklist: true}"),
                   doc("listentry", "version", "{value: 'source.labels[\"version\"]'}"),
                   rule("whitelist.listchecker", "version.listentry"))
    [action] = only_rule(mixer).actions
    assert (action.handler.adapter, action.handler.params) == ("listchecker", {"overrides": ["v1"], "blacklist": True})
    assert (action.instances[0].template, action.instances[0].params) == (
        "listentry", {"value": 'source.labels["version"]'})


def test_a_bare_name_means_the_generic_kind_never_a_per_kind_one() -> None:
    mixer = config(doc("denier", "deny", "{status: {code: 7}}"), doc("checknothing", "nothing", "{}"),
                   rule("deny", "nothing.checknothing"))
    assert only_rule(mixer).actions == ()
    assert mixer.problems == ["rule default/r spec.actions[0].handler: 'deny' does not exist; the action is skipped"]


# --- which rules may apply to a workload -----------------------------------------------------

DENY = [doc("handler", "deny", "{compiledAdapter: denier, params: {status: {code: 7, message: denied}}}", ns)
        for ns in ("default", "istio-system")] + [
    doc("instance", "nothing", "{compiledTemplate: checknothing}", ns) for ns in ("default", "istio-system")]


def reviews(namespace: str = "default", **labels: str) -> dict[str, object]:
    return {"destination.namespace": namespace, "destination.labels": labels or {"app": "reviews", "version": "v1"}}


def test_a_rule_in_the_config_namespace_may_apply_everywhere() -> None:
    mixer = config(*DENY, rule("deny", "nothing", namespace="istio-system"))
    mesh_wide = only_rule(mixer)
    assert mesh_wide.mesh_wide and mesh_wide.name == "r.rule.istio-system"
    assert mixer.may_apply(mesh_wide, reviews("default"))
    assert mixer.may_apply(mesh_wide, reviews("prod"))


def test_a_rule_elsewhere_may_apply_only_to_its_own_namespace() -> None:
    mixer = config(*DENY, rule("deny", "nothing", namespace="default"))
    scoped = only_rule(mixer)
    assert not scoped.mesh_wide
    assert mixer.may_apply(scoped, reviews("default"))
    assert not mixer.may_apply(scoped, reviews("prod"))


def test_the_config_namespace_is_a_parameter() -> None:
    [scoped] = build(resources(*DENY, rule("deny", "nothing", namespace="istio-system")), "mesh-root").rules
    [mesh_wide] = build(resources(*DENY, rule("deny", "nothing", namespace="default")), "default").rules
    assert not scoped.mesh_wide and mesh_wide.mesh_wide


@pytest.mark.parametrize(("match", "partially", "may"), [
    # Decided by the workload's labels alone.
    ('destination.labels["app"] == "reviews"', True, True),
    ('destination.labels["app"] == "ratings"', False, False),
    # A label the workload does not have reads "", as on every request to it.
    ('destination.labels["tier"] == "backend"', False, False),
    ('destination.labels["app"] == "ratings" && source.labels["version"] == "v3"', False, False),
    # Depends on the request: it may apply.
    ('source.labels["app"] == "productpage"', None, True),
    ('destination.labels["app"] == "reviews" && source.labels["version"] == "v3"', None, True),
    ('destination.labels["app"] == "ratings" || request.headers["x-debug"] == "1"', None, True),
    ('destination.service.name == "ratings"', None, True),
])
def test_may_apply_is_false_only_when_static_attributes_make_the_match_false(
        match: str, partially: bool | None, may: bool) -> None:
    mixer = config(*DENY, rule("deny", "nothing", match=match, namespace="istio-system"))
    found = only_rule(mixer)
    assert found.match is not None
    assert partial(found.match, reviews()) is partially
    assert mixer.may_apply(found, reviews()) is may


def test_a_rule_without_match_may_apply_to_its_namespace() -> None:
    mixer = config(*DENY, rule("deny", "nothing"))
    assert only_rule(mixer).match is None
    assert mixer.may_apply(only_rule(mixer), reviews())


def test_check_and_quota_rules_are_told_apart_by_their_handlers() -> None:
    mixer = config(*DENY, rule("deny", "nothing", name="check"),
                   doc("handler", "quotas", "{compiledAdapter: memquota, params: {quotas: "
                                            "[{name: requests.instance.default, maxAmount: 5, validDuration: 1s}]}}"),
                   doc("instance", "requests", "{compiledTemplate: quota, params: {dimensions: {d: '\"x\"'}}}"),
                   rule("quotas", "requests", name="quota"))
    assert [r.name for r in mixer.check_rules()] == ["check.rule.default"]
    assert [r.name for r in mixer.quota_rules()] == ["quota.rule.default"]


# --- dangling references ---------------------------------------------------------------------


def test_a_missing_handler_skips_its_action_and_is_a_problem() -> None:
    mixer = config(*DENY, doc("rule", "r", "{actions: [{handler: nobody, instances: [nothing]}, "
                                           "{handler: deny, instances: [nothing]}]}"))
    [kept] = only_rule(mixer).actions
    assert kept.handler.name == "deny.handler.default"
    assert mixer.problems == ["rule default/r spec.actions[0].handler: 'nobody' does not exist; the action is skipped"]


def test_a_rule_left_without_actions_is_neither_a_check_nor_a_quota_rule() -> None:
    mixer = config(*DENY, rule("nobody", "nothing"))
    assert len(mixer.rules) == 1 and mixer.check_rules() == [] and mixer.quota_rules() == []


def test_a_missing_instance_is_skipped_and_is_a_problem() -> None:
    mixer = config(*DENY, doc("rule", "r", "{actions: [{handler: deny, instances: [ghost, nothing]}]}"))
    [action] = only_rule(mixer).actions
    assert [i.name for i in action.instances] == ["nothing.instance.default"]
    assert mixer.problems == ["rule default/r spec.actions[0]: instance 'ghost' does not exist; skipped"]


def test_a_reference_to_another_namespace_is_not_found_in_the_rules_own() -> None:
    mixer = config(doc("handler", "deny", "{compiledAdapter: denier}", "istio-system"),
                   doc("instance", "nothing", "{compiledTemplate: checknothing}", "istio-system"),
                   rule("deny", "nothing.istio-system"))
    assert only_rule(mixer).actions == ()
    assert len(mixer.problems) == 1 and "'deny' does not exist" in mixer.problems[0]


# --- quota charges -------------------------------------------------------------------------

QUOTA_SPEC = doc("QuotaSpec", "request-count",
                 "{rules: [{quotas: [{quota: requestcount, charge: 1}]}, {quotas: [{quota: bytes, charge: 3}]}]}",
                 "istio-system")
CHARGES = [QuotaCharge("requestcount", 1), QuotaCharge("bytes", 3)]


def svc(namespace: str, name: str) -> ServiceName:
    return ServiceName(f"{name}.{namespace}.svc.cluster.local", name, namespace)


def binding(services: str, specs: str = "[{name: request-count, namespace: istio-system}]",
            namespace: str = "istio-system", name: str = "b") -> str:
    return doc("QuotaSpecBinding", name, f"{{services: {services}, quotaSpecs: {specs}}}", namespace)


def test_a_binding_by_name_charges_that_service_only() -> None:
    mixer = config(QUOTA_SPEC, binding("[{name: productpage, namespace: default}]"))
    assert mixer.problems == []
    assert mixer.charges([svc("default", "productpage")]) == CHARGES
    assert mixer.charges([svc("default", "reviews")]) == []
    assert mixer.charges([svc("prod", "productpage")]) == []


def test_a_workload_serving_several_services_is_charged_once_per_quota() -> None:
    mixer = config(QUOTA_SPEC, binding("[{name: productpage, namespace: default}]"),
                   binding("[{name: reviews, namespace: default}]", name="other"))
    assert mixer.charges([svc("default", "productpage"), svc("default", "reviews")]) == CHARGES


def test_a_binding_service_and_spec_without_namespace_are_in_the_bindings() -> None:
    mixer = config(doc("QuotaSpec", "request-count", "{rules: [{quotas: [{quota: requestcount, charge: 2}]}]}"),
                   binding("[{name: productpage}]", specs="[{name: request-count}]", namespace="default"))
    assert mixer.problems == []
    assert mixer.charges([svc("default", "productpage")]) == [QuotaCharge("requestcount", 2)]


def test_a_wildcard_binding_charges_every_service_but_not_a_workload_serving_none() -> None:
    mixer = config(doc("QuotaSpec", "request-count", "{rules: [{quotas: [{quota: requestcount, charge: 1}]}]}"),
                   binding("[{service: '*'}]", specs="[{name: request-count}]", namespace="default"))
    assert mixer.charges([svc("default", "productpage")]) == [QuotaCharge("requestcount", 1)]
    assert mixer.charges([svc("prod", "orders")]) == [QuotaCharge("requestcount", 1)]
    assert mixer.charges([]) == []


def test_a_wildcard_binding_charges_every_service_in_every_namespace() -> None:
    # Istio's sample (mixer-rule-productpage-ratelimit.yaml) binds from istio-system, with
    # "- service: '*'  # Uncomment this to bind *all* services to request-count".
    mixer = config(QUOTA_SPEC, binding("[{service: '*'}]"))
    assert mixer.charges([svc("default", "productpage")]) == CHARGES


def test_a_binding_by_fully_qualified_service_charges_that_service() -> None:
    mixer = config(QUOTA_SPEC, binding("[{service: productpage.default.svc.cluster.local}, "
                                       "{service: books.example.com}]"))
    assert mixer.charges([svc("default", "productpage")]) == CHARGES
    assert mixer.charges([ServiceName("books.example.com", "books.example.com", "default")]) == CHARGES
    assert mixer.charges([svc("default", "reviews")]) == []


def test_a_quota_spec_rules_match_is_kept_as_alternatives_of_clauses() -> None:
    spec = doc("QuotaSpec", "request-count", "{rules: [{match: [{clause: {request.path: {prefix: /api}, "
               "request.method: {exact: POST}}}, {clause: {'request.headers[x-user]': {regex: 'bot-.*'}}}], "
               "quotas: [{quota: requestcount, charge: 2}]}]}", "istio-system")
    mixer = config(spec, binding("[{name: productpage, namespace: default}]"))
    [charge] = mixer.charges([svc("default", "productpage")])
    assert charge.matches == ((("request.method", "exact", "POST"), ("request.path", "prefix", "/api")),
                              (("request.headers[x-user]", "regex", "bot-.*"),))


def test_a_missing_quota_spec_is_a_problem_and_charges_nothing() -> None:
    mixer = config(QUOTA_SPEC, binding("[{name: productpage, namespace: default}]",
                                       specs="[{name: nope}, {name: request-count, namespace: istio-system}]"))
    assert mixer.problems == ["QuotaSpecBinding istio-system/b: QuotaSpec 'nope' does not exist"]
    assert mixer.charges([svc("default", "productpage")]) == CHARGES


def test_build_accepts_any_iterable_of_resources() -> None:
    found = resources(QUOTA_SPEC, binding("[{name: productpage, namespace: default}]"))
    assert build(iter(found)).charges([svc("default", "productpage")]) == CHARGES


# --- Istio's samples -------------------------------------------------------------------------


def test_the_samples_are_there() -> None:
    assert {"mixer-rule-deny-label.yaml", "mixer-rule-deny-label-crd.yaml", "mixer-rule-deny-whitelist.yaml",
            "mixer-rule-deny-ip.yaml", "mixer-rule-productpage-ratelimit.yaml",
            "mixer-rule-productpage-redis-quota-fixed-window.yaml"} <= {path.name for path in SAMPLES.glob("*.yaml")}


@pytest.mark.parametrize("sample", sorted(path.name for path in SAMPLES.glob("*.yaml")))
def test_istio_samples_resolve_without_problems(sample: str) -> None:
    mixer = config((SAMPLES / sample).read_text())
    assert mixer.problems == []
    assert mixer.rules and all(rule.actions and all(a.instances for a in rule.actions) for rule in mixer.rules)


def test_the_deny_label_samples_1_0_and_1_1_resolve_alike() -> None:
    generic = config((SAMPLES / "mixer-rule-deny-label.yaml").read_text())
    typed = config((SAMPLES / "mixer-rule-deny-label-crd.yaml").read_text())
    for mixer in (generic, typed):
        [check] = mixer.check_rules()
        [action] = check.actions
        assert action.handler.adapter == "denier" and action.handler.params["status"] == {
            "code": 7, "message": "Not allowed"}
        assert [i.template for i in action.instances] == ["checknothing"]
        assert not mixer.may_apply(check, reviews(check.namespace))
        assert mixer.may_apply(check, reviews(check.namespace, app="ratings"))
    # The 1.1 sample has no namespace (applied to default); the 1.0 one is mesh-wide.
    assert not generic.rules[0].mesh_wide and typed.rules[0].mesh_wide


def test_the_ratelimit_sample_charges_productpage() -> None:
    mixer = config((SAMPLES / "mixer-rule-productpage-ratelimit.yaml").read_text())
    [quota_rule] = mixer.quota_rules()
    [action] = quota_rule.actions
    assert quota_rule.mesh_wide and action.handler.adapter == "memquota"
    assert [i.name for i in action.instances] == ["requestcountquota.instance.istio-system"]
    assert mixer.charges([svc("default", "productpage")]) == [QuotaCharge("requestcountquota", 1)]
    assert mixer.charges([svc("default", "reviews")]) == []
