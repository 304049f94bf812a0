"""Mixer's runtime: for a request's attributes, the rules whose match holds, their instances
built by evaluating the instances' expressions, and the handlers that answer them.

A check is the first non-OK answer of every applicable check handler (denier,
listchecker), valid for the shortest duration and use count among them.  A quota is the
charge allocated by every quota handler (memquota, redisquota) of an applicable rule for
instances of that quota; it is granted only if all grant it.  A rule whose match cannot be
evaluated (an attribute it reads is absent and has no `|` default) does not apply, as in
Mixer.  Adapters live as long as their handler's params do not change, so a config edit
elsewhere keeps quota counts and fetched lists.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from libs.cexl import EvaluationError, evaluate
from libs.mixer import CHECK_ADAPTERS, QUOTA_ADAPTERS, Instance, MixerConfig, Rule
from services.policy.adapters.denier import Denier
from services.policy.adapters.listchecker import ListChecker
from services.policy.adapters.quota import QuotaHandler
from services.policy.adapters.results import CheckResult
from services.policy.attributes import Tracking
from services.policy.status import Status

log = structlog.get_logger(__name__)

CheckAdapter = Denier | ListChecker
Signature = frozenset[tuple[str, str | None]]


@dataclass(frozen=True)
class Decision:
    status: Status
    handler: str = ""
    valid_s: float = math.inf
    uses: int = 2**31

    @property
    def ok(self) -> bool:
        return self.status.ok


@dataclass
class Adapters:
    """The running adapter of each handler, kept across config changes that leave it alone."""

    checks: dict[str, CheckAdapter] = field(default_factory=dict)
    quotas: dict[str, QuotaHandler] = field(default_factory=dict)
    # The list checkers that fetch from a providerUrl: someone must keep them refreshed.
    fetching: dict[str, ListChecker] = field(default_factory=dict)
    redis_clients: dict[str, Any] = field(default_factory=dict)
    _built: dict[str, tuple[str, Any]] = field(default_factory=dict)

    def update(self, config: MixerConfig, resolve: Callable[[str, str], str] = lambda address, namespace: address
               ) -> None:
        """Adapters for `config`'s handlers.  `resolve(host:port, namespace)` is where a
        handler in `namespace` reaches a server it names (redisquota's Redis)."""
        built: dict[str, tuple[str, Any]] = {}
        handlers = {action.handler.name: action.handler for rule in config.rules for action in rule.actions}
        for name, handler in handlers.items():
            params = dict(handler.params)
            if handler.adapter == "redisquota" and params.get("redisServerUrl"):
                params["redisServerUrl"] = resolve(params["redisServerUrl"], handler.namespace)
            identity = f"{handler.adapter}:{json.dumps(params, sort_keys=True)}"
            kept = self._built.get(name)
            if kept is not None and kept[0] == identity:
                built[name] = kept
                continue
            adapter: Any
            if handler.adapter == "denier":
                adapter = Denier.from_params(params)
            elif handler.adapter == "listchecker":
                adapter = ListChecker.from_params(params)
            elif handler.adapter == "memquota":
                adapter = QuotaHandler.memquota(params)
            elif handler.adapter == "redisquota":
                adapter = QuotaHandler.redisquota(params, clients=self.redis_clients)
            else:
                log.warning("handler uses an adapter the policy service does not run", handler=name,
                            adapter=handler.adapter)
                continue
            built[name] = (identity, adapter)
        self._built = built
        self.checks = {n: a for n, (_, a) in built.items() if isinstance(a, Denier | ListChecker)}
        self.quotas = {n: a for n, (_, a) in built.items() if isinstance(a, QuotaHandler)}
        self.fetching = {n: a for n, a in self.checks.items() if isinstance(a, ListChecker) and a.provider_url}


def _applies(rule: Rule, attributes: Mapping[str, Any]) -> bool:
    if not rule.mesh_wide and attributes.get("destination.namespace") != rule.namespace:
        return False
    if rule.match is None:
        return True
    try:
        return bool(evaluate(rule.match, attributes))
    except EvaluationError:
        return False


def _instance(instance: Instance, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The template's fields, evaluated (checknothing has none; quota's are dimensions)."""
    if instance.template == "listentry":
        return {"value": evaluate(instance.params.get("value", '""'), attributes)}
    if instance.template == "quota":
        return {"dimensions": {name: str(evaluate(text, attributes))
                               for name, text in (instance.params.get("dimensions") or {}).items()}}
    return {}


class Engine:
    def __init__(self, config: MixerConfig, adapters: Adapters) -> None:
        self.config = config
        self.adapters = adapters
        self._check_rules = config.check_rules()
        self._quota_rules = config.quota_rules()

    def check(self, attributes: Mapping[str, Any]) -> tuple[Decision, Signature]:
        tracking = Tracking(attributes)
        decision = Decision(Status())
        for rule in self._check_rules:
            if not _applies(rule, tracking):
                continue
            for action in rule.actions:
                adapter = self.adapters.checks.get(action.handler.name)
                if adapter is None or action.handler.adapter not in CHECK_ADAPTERS:
                    continue
                for instance in action.instances or ():
                    try:
                        result = adapter.check(_instance(instance, tracking))
                    except EvaluationError as exc:
                        result = CheckResult(Status(3, f"instance {instance.name}: {exc}"), 0, 0)
                    decision = _combine(decision, result, action.handler.name)
        return decision, frozenset(tracking.read)

    async def allocate(self, attributes: Mapping[str, Any], quota: str, charge: int) -> bool:
        """Whether `charge` more of the quota named `quota` (a QuotaSpec's quota) fits."""
        granted = True
        for rule in self._quota_rules:
            if not _applies(rule, attributes):
                continue
            for action in rule.actions:
                handler = self.adapters.quotas.get(action.handler.name)
                if handler is None or action.handler.adapter not in QUOTA_ADAPTERS:
                    continue
                for instance in action.instances:
                    if instance.short_name != quota or instance.template != "quota":
                        continue
                    try:
                        dimensions = _instance(instance, attributes)["dimensions"]
                    except EvaluationError as exc:
                        # As a rule whose match cannot be evaluated: this instance does not apply.
                        log.warning("quota dimensions cannot be evaluated; not counted", instance=instance.name,
                                    error=str(exc))
                        continue
                    granted &= await handler.allocate(instance.name, dimensions, charge)
        return granted


def _combine(decision: Decision, result: CheckResult, handler: str) -> Decision:
    valid = min(decision.valid_s, result.valid_duration_s)
    uses = min(decision.uses, result.valid_use_count)
    if decision.ok and not result.status.ok:
        return Decision(result.status, handler, valid, uses)
    return Decision(decision.status, decision.handler, valid, uses)
