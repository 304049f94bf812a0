"""Mixer's runtime over resolved config, pure: which rules apply to a request's attributes,
how the answers of several handlers combine into one decision (and for how long it holds),
which attributes the decision read, which adapters survive a config change, and how quota
handlers combine."""

from __future__ import annotations

from typing import Any

from libs.config import parse_text
from libs.mixer import MixerConfig, build
from services.policy.adapters.quota import MemoryCounts, QuotaHandler
from services.policy.cache import CheckCache
from services.policy.engine import Adapters, Decision, Engine
from services.policy.status import NOT_FOUND, PERMISSION_DENIED, Status

INVALID_ARGUMENT = 3


def doc(kind: str, name: str, spec: str, namespace: str = "istio-system") -> str:
    return (f"apiVersion: config.istio.io/v1alpha2\nkind: {kind}\n"
            f"metadata: {{name: {name}, namespace: {namespace}}}\nspec: {spec}\n")


def denier(name: str, code: int = PERMISSION_DENIED, *, namespace: str = "istio-system", extra: str = "") -> str:
    return doc("handler", name, f"{{compiledAdapter: denier, params: {{status: {{code: {code}, message: {name}}}"
                                f"{extra}}}}}", namespace)


def rule(name: str, handler: str, instance: str = "nothing", *, match: str = "",
         namespace: str = "istio-system") -> str:
    when = f"match: '{match}', " if match else ""
    return doc("rule", name, f"{{{when}actions: [{{handler: {handler}, instances: [{instance}]}}]}}", namespace)


NOTHING = doc("instance", "nothing", "{compiledTemplate: checknothing}")
VERSION = doc("instance", "version", "{compiledTemplate: listentry, params: {value: 'source.labels[\"version\"]'}}")
WHITELIST = doc("handler", "whitelist", "{compiledAdapter: listchecker, params: {overrides: [v1, v2], "
                                        "cachingInterval: 2s, cachingUseCount: 500}}")


def mixer(*documents: str) -> MixerConfig:
    result = parse_text("---\n".join(documents), "test")
    assert result.errors() == []
    built = build([resource for _, resource in result.resources])
    assert built.problems == []
    return built


def engine(*documents: str, adapters: Adapters | None = None) -> Engine:
    config = mixer(*documents)
    adapters = adapters or Adapters()
    adapters.update(config)
    return Engine(config, adapters)


def request(namespace: str = "default", app: str = "reviews") -> dict[str, Any]:
    return {"destination.namespace": namespace, "destination.labels": {"app": app},
            "source.labels": {"app": "productpage", "version": "v1"}}


# --- which rules apply ---------------------------------------------------------------------


def test_no_applicable_rule_is_ok_for_ever() -> None:
    decision, read = engine(NOTHING, denier("deny"), rule("r", "deny", match='destination.labels["app"] == "x"')
                            ).check(request())
    assert decision == Decision(Status())
    assert read == {("destination.labels", "app")}


def test_the_first_denial_in_rule_order_wins() -> None:
    first = engine(NOTHING, denier("a", PERMISSION_DENIED), denier("b", NOT_FOUND), rule("ra", "a"), rule("rb", "b"))
    second = engine(NOTHING, denier("a", PERMISSION_DENIED), denier("b", NOT_FOUND), rule("rb", "b"), rule("ra", "a"))
    assert first.check(request())[0].status == Status(PERMISSION_DENIED, "a")
    assert first.check(request())[0].handler == "a.handler.istio-system"
    assert second.check(request())[0].status == Status(NOT_FOUND, "b")


def test_an_ok_answer_does_not_hide_a_later_denial() -> None:
    checks = engine(NOTHING, VERSION, WHITELIST, denier("deny"), rule("allow", "whitelist", "version"),
                    rule("deny", "deny"))
    decision, _ = checks.check(request())
    assert (decision.status.code, decision.handler) == (PERMISSION_DENIED, "deny.handler.istio-system")


def test_a_namespaced_rule_applies_only_to_requests_for_its_namespace() -> None:
    checks = engine(doc("instance", "nothing", "{compiledTemplate: checknothing}", "default"),
                    denier("deny", namespace="default"), rule("r", "deny", namespace="default"))
    assert not checks.check(request("default"))[0].ok
    assert checks.check(request("prod"))[0].ok


def test_a_mesh_wide_rule_applies_to_every_namespace() -> None:
    checks = engine(NOTHING, denier("deny"), rule("r", "deny"))
    assert not checks.check(request("default"))[0].ok
    assert not checks.check(request("prod"))[0].ok


def test_a_match_reading_an_absent_attribute_does_not_apply() -> None:
    checks = engine(NOTHING, denier("deny"), rule("r", "deny", match='source.labels["app"] == "productpage"'))
    assert not checks.check(request())[0].ok
    without_source = request()
    del without_source["source.labels"]
    assert checks.check(without_source)[0].ok


def test_a_match_with_a_default_for_an_absent_attribute_applies() -> None:
    checks = engine(NOTHING, denier("deny"),
                    rule("r", "deny", match='(source.labels["app"] | "unknown") == "unknown"'))
    without_source = request()
    del without_source["source.labels"]
    assert not checks.check(without_source)[0].ok
    assert checks.check(request())[0].ok


def test_listentry_instances_are_evaluated_for_the_list() -> None:
    checks = engine(VERSION, WHITELIST, rule("r", "whitelist", "version"))
    assert checks.check(request())[0].ok
    denied = {**request(), "source.labels": {"version": "v3"}}
    assert checks.check(denied)[0].status == Status(NOT_FOUND, "v3 is not whitelisted")


def test_an_instance_that_cannot_be_evaluated_is_an_uncacheable_invalid_argument() -> None:
    checks = engine(VERSION, WHITELIST, rule("r", "whitelist", "version"))
    without_source = request()
    del without_source["source.labels"]
    decision, _ = checks.check(without_source)
    assert decision.status.code == INVALID_ARGUMENT
    assert decision.status.message.startswith("instance version.instance.istio-system: ")
    assert (decision.valid_s, decision.uses) == (0, 0)


def test_the_decision_holds_for_the_shortest_duration_and_fewest_uses() -> None:
    checks = engine(NOTHING, VERSION, WHITELIST, denier("allow", 0, extra=", validDuration: 10s, validUseCount: 100"),
                    rule("a", "allow"), rule("w", "whitelist", "version"))
    decision, _ = checks.check(request())
    assert decision.ok
    assert (decision.valid_s, decision.uses) == (2.0, 100)


def test_the_decision_names_every_attribute_and_key_it_read() -> None:
    checks = engine(NOTHING, denier("deny"), rule("r", "deny", match='destination.labels["app"] == "reviews" && '
                                                                 'request.headers["x-user"] == "jason"'))
    _, short_circuited = checks.check({**request(app="ratings"), "request.headers": {"x-user": "jason"}})
    assert short_circuited == {("destination.labels", "app")}
    _, both = checks.check({**request(), "request.headers": {"x-user": "jason", "x-other": "1"}})
    assert both == {("destination.labels", "app"), ("request.headers", "x-user")}


def test_a_decision_made_without_the_destination_namespace_is_not_served_to_other_namespaces() -> None:
    checks = engine(doc("instance", "nothing", "{compiledTemplate: checknothing}", "default"),
                    denier("deny", namespace="default"), rule("r", "deny", namespace="default"))
    unknown_destination = {"source.labels": {"app": "productpage"}}
    cache: CheckCache[Decision] = CheckCache(clock=lambda: 0.0)
    decision, read = checks.check(unknown_destination)
    assert decision.ok
    cache.put(unknown_destination, read, decision, valid_s=decision.valid_s, uses=decision.uses)
    assert cache.get(request("default")) is None


# --- adapters across config changes ----------------------------------------------------------


def test_adapters_are_kept_while_their_params_are_unchanged() -> None:
    adapters = Adapters()
    adapters.update(mixer(NOTHING, VERSION, WHITELIST, denier("deny"), rule("w", "whitelist", "version")))
    whitelist = adapters.checks["whitelist.handler.istio-system"]
    # Another rule added, and the whitelist's own rule changed: its params are not.
    adapters.update(mixer(NOTHING, VERSION, WHITELIST, denier("deny"), rule("d", "deny"),
                          rule("w", "whitelist", "version", match='destination.labels["app"] == "ratings"')))
    assert adapters.checks["whitelist.handler.istio-system"] is whitelist
    assert set(adapters.checks) == {"whitelist.handler.istio-system", "deny.handler.istio-system"}


def test_an_adapter_is_replaced_when_its_params_change_and_dropped_when_unused() -> None:
    adapters = Adapters()
    adapters.update(mixer(NOTHING, denier("deny", PERMISSION_DENIED), rule("r", "deny")))
    before = adapters.checks["deny.handler.istio-system"]
    adapters.update(mixer(NOTHING, denier("deny", NOT_FOUND), rule("r", "deny")))
    after = adapters.checks["deny.handler.istio-system"]
    assert after is not before
    assert after.check({}).status.code == NOT_FOUND
    adapters.update(mixer(NOTHING, denier("deny", NOT_FOUND)))
    assert adapters.checks == {}


def test_list_checkers_with_a_provider_are_the_ones_to_keep_fetched() -> None:
    adapters = Adapters()
    adapters.update(mixer(VERSION, WHITELIST, rule("w", "whitelist", "version"),
                          doc("handler", "remote", "{compiledAdapter: listchecker, params: "
                                                   "{providerUrl: 'http://lists.example/v', overrides: []}}"),
                          rule("x", "remote", "version")))
    assert set(adapters.fetching) == {"remote.handler.istio-system"}
    assert adapters.fetching["remote.handler.istio-system"] is adapters.checks["remote.handler.istio-system"]


# --- quotas ----------------------------------------------------------------------------------

REQUESTS = doc("instance", "requestcount", "{compiledTemplate: quota, params: {dimensions: "
                                           "{destination: 'destination.labels[\"app\"] | \"unknown\"'}}}")


def memquota(name: str, max_amount: int, *, overrides: str = "[]") -> str:
    return doc("handler", name, f"{{compiledAdapter: memquota, params: {{quotas: [{{name: "
                                f"requestcount.instance.istio-system, maxAmount: {max_amount}, validDuration: 1s, "
                                f"overrides: {overrides}}}]}}}}")


def quota_engine(*documents: str) -> Engine:
    config = mixer(*documents)
    adapters = Adapters()
    adapters.update(config)
    # Counts on a clock that stands still: one window for the whole test.
    for name, handler in adapters.quotas.items():
        adapters.quotas[name] = QuotaHandler(handler.quotas, MemoryCounts(clock=lambda: 1000.0))
    return Engine(config, adapters)


async def allocations(quotas: Engine, times: int, attributes: dict[str, Any], quota: str = "requestcount",
                      charge: int = 1) -> list[bool]:
    return [await quotas.allocate(attributes, quota, charge) for _ in range(times)]


async def test_allocate_is_granted_only_if_every_handler_grants_it() -> None:
    quotas = quota_engine(REQUESTS, memquota("generous", 3), memquota("strict", 1),
                          rule("q1", "generous", "requestcount"), rule("q2", "strict", "requestcount"))
    assert await allocations(quotas, 2, request()) == [True, False]


async def test_allocate_evaluates_dimensions_for_the_overrides() -> None:
    quotas = quota_engine(REQUESTS, memquota("q", 100, overrides="[{dimensions: {destination: reviews}, "
                                                                 "maxAmount: 1}]"),
                          rule("q", "q", "requestcount"))
    assert await allocations(quotas, 2, request(app="reviews")) == [True, False]
    assert await allocations(quotas, 2, request(app="ratings")) == [True, True]


async def test_allocate_charges_the_amount_asked() -> None:
    quotas = quota_engine(REQUESTS, memquota("q", 5), rule("q", "q", "requestcount"))
    assert await allocations(quotas, 1, request(), charge=4) == [True]
    assert await allocations(quotas, 1, request(), charge=2) == [False]
    assert await allocations(quotas, 1, request(), charge=1) == [True]


async def test_a_quota_no_applicable_rule_counts_is_granted() -> None:
    quotas = quota_engine(REQUESTS, memquota("q", 1),
                          rule("q", "q", "requestcount", match='destination.labels["app"] == "ratings"'))
    assert await allocations(quotas, 2, request(app="ratings")) == [True, False]
    assert await allocations(quotas, 3, request(app="reviews")) == [True] * 3
    assert await allocations(quotas, 3, request(app="ratings"), quota="bytes") == [True] * 3


async def test_quota_counts_survive_a_config_change_that_leaves_the_handler_alone() -> None:
    adapters = Adapters()
    first = mixer(REQUESTS, memquota("q", 1), rule("q", "q", "requestcount"))
    adapters.update(first)
    assert await Engine(first, adapters).allocate(request(), "requestcount", 1) is True
    second = mixer(REQUESTS, memquota("q", 1), rule("q", "q", "requestcount"), NOTHING, denier("deny"),
                   rule("d", "deny"))
    adapters.update(second)
    assert await Engine(second, adapters).allocate(request(), "requestcount", 1) is False
