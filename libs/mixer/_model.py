"""Mixer's config, resolved: rules with their handlers and instances, and the quota specs
bound to services.  Pure; the policy service runs it, pilot asks it which workloads need
a check or a quota at all (so a workload no rule can reach gets no filter and no hop).

References as Mixer wrote them: `name.kind` (Istio 1.0's per-adapter and per-template
kinds), `name.kind.namespace`, or a bare `name` (1.1's generic `handler` / `instance`, in
the rule's namespace).  A rule in the mesh's config namespace (istio-system) applies to
every request; a rule elsewhere only to requests whose destination is in its namespace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from libs.cexl import Expression, parse, partial
from libs.config import Resource
from libs.config.directory import ServiceName

HANDLER_KINDS = ("denier", "listchecker", "memquota", "redisquota")
TEMPLATE_KINDS = ("checknothing", "listentry", "quota")
CHECK_ADAPTERS = ("denier", "listchecker")
QUOTA_ADAPTERS = ("memquota", "redisquota")
GENERIC_HANDLER = "handler"
GENERIC_INSTANCE = "instance"
MIXER_GROUP = "config.istio.io"


@dataclass(frozen=True)
class Handler:
    name: str  # fully qualified: <name>.<kind>.<namespace>
    adapter: str  # denier, listchecker, memquota, redisquota
    params: Mapping[str, Any]
    namespace: str = ""


@dataclass(frozen=True)
class Instance:
    name: str  # fully qualified: <name>.<kind>.<namespace>
    short_name: str
    template: str  # checknothing, listentry, quota
    params: Mapping[str, Any]


@dataclass(frozen=True)
class Action:
    handler: Handler
    instances: tuple[Instance, ...]


@dataclass(frozen=True)
class Rule:
    name: str  # <name>.rule.<namespace>
    namespace: str
    match: Expression | None
    actions: tuple[Action, ...]
    mesh_wide: bool


# One clause of a QuotaSpec rule's match: (attribute, "exact" | "prefix" | "regex", value).
Clause = tuple[str, str, str]


@dataclass(frozen=True)
class QuotaCharge:
    quota: str  # the quota instance's short name, as the QuotaSpec names it
    charge: int
    # The spec rule's match: any one alternative whose every clause holds; () always.
    matches: tuple[tuple[Clause, ...], ...] = ()


@dataclass
class MixerConfig:
    rules: list[Rule] = field(default_factory=list)
    # (service namespace, service name) -> charges of the specs bound to it.
    bindings: dict[tuple[str, str], list[QuotaCharge]] = field(default_factory=dict)
    # Bound by host (a binding's `service: <fqdn>`), and to every service (`service: '*'`).
    host_bindings: dict[str, list[QuotaCharge]] = field(default_factory=dict)
    wildcard: list[QuotaCharge] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def check_rules(self) -> list[Rule]:
        return [r for r in self.rules if any(a.handler.adapter in CHECK_ADAPTERS for a in r.actions)]

    def quota_rules(self) -> list[Rule]:
        return [r for r in self.rules if any(a.handler.adapter in QUOTA_ADAPTERS for a in r.actions)]

    def may_apply(self, rule: Rule, destination: Mapping[str, Any]) -> bool:
        """Whether `rule` can apply to requests to a workload whose static attributes are
        `destination` (destination.namespace, .labels, .service.*, .workload.*): False only
        when they alone make its match false."""
        if not rule.mesh_wide and destination.get("destination.namespace") != rule.namespace:
            return False
        return rule.match is None or partial(rule.match, destination) is not False

    def charges(self, services: Iterable[ServiceName]) -> list[QuotaCharge]:
        """The quota charges bound to any of `services`, each once."""
        found: list[QuotaCharge] = []
        services = list(services)
        for service in services:
            found.extend(self.bindings.get((service.namespace, service.name), []))
            found.extend(self.host_bindings.get(service.host, []))
        if services:
            found.extend(self.wildcard)
        return list(dict.fromkeys(found))


def _split(reference: str, namespace: str, kinds: tuple[str, ...], generic: str) -> tuple[str, str, str]:
    """(name, kind, namespace) of a handler or instance reference."""
    parts = reference.split(".")
    if len(parts) == 1:
        return parts[0], generic, namespace
    if len(parts) == 2:
        # As galley's validation reads it: a Mixer kind after the dot, else a namespace.
        known = parts[1] in kinds or parts[1] == generic
        return (parts[0], parts[1], namespace) if known else (parts[0], generic, parts[1])
    return parts[0], parts[1], ".".join(parts[2:])


def _clauses(match: Mapping[str, Any]) -> tuple[Clause, ...]:
    found: list[Clause] = []
    for attribute, string_match in sorted((match.get("clause") or {}).items()):
        kind = next((k for k in ("exact", "prefix", "regex") if k in string_match), "exact")
        found.append((attribute, kind, str(string_match.get(kind, ""))))
    return tuple(found)


def _binding_key(service: Mapping[str, Any], namespace: str) -> tuple[str, str] | str:
    """(namespace, name) of a binding's service, or its host when it names one by FQDN."""
    if service.get("service"):
        host = service["service"]
        parts = host.split(".")
        if len(parts) >= 4 and parts[2] == "svc":
            return parts[1], parts[0]
        return str(host)
    return service.get("namespace") or namespace, service.get("name", "")


def build(resources: Iterable[Resource], config_namespace: str = "istio-system") -> MixerConfig:
    resources = list(resources)
    handlers: dict[tuple[str, str, str], Handler] = {}
    instances: dict[tuple[str, str, str], Instance] = {}
    rules: list[Resource] = []
    config = MixerConfig()
    for resource in resources:
        if resource.group != MIXER_GROUP:
            continue
        key = (resource.name, resource.kind, resource.namespace)
        qualified = f"{resource.name}.{resource.kind}.{resource.namespace}"
        if resource.kind in HANDLER_KINDS:
            handlers[key] = Handler(qualified, resource.kind, resource.spec, resource.namespace)
        elif resource.kind == GENERIC_HANDLER:
            handlers[key] = Handler(qualified, resource.spec.get("compiledAdapter", ""),
                                    resource.spec.get("params", {}), resource.namespace)
        elif resource.kind in TEMPLATE_KINDS:
            instances[key] = Instance(qualified, resource.name, resource.kind, resource.spec)
        elif resource.kind == GENERIC_INSTANCE:
            instances[key] = Instance(qualified, resource.name, resource.spec.get("compiledTemplate", ""),
                                      resource.spec.get("params", {}))
        elif resource.kind == "rule":
            rules.append(resource)
    specs = {(r.namespace, r.name): r for r in resources if r.group == MIXER_GROUP and r.kind == "QuotaSpec"}
    for rule in rules:
        actions = []
        for i, action in enumerate(rule.spec.get("actions", [])):
            handler = handlers.get(_split(action.get("handler", ""), rule.namespace, HANDLER_KINDS, GENERIC_HANDLER))
            if handler is None:
                config.problems.append(f"rule {rule.namespace}/{rule.name} spec.actions[{i}].handler: "
                                       f"{action.get('handler')!r} does not exist; the action is skipped")
                continue
            used = []
            for reference in action.get("instances", []):
                instance = instances.get(_split(reference, rule.namespace, TEMPLATE_KINDS, GENERIC_INSTANCE))
                if instance is None:
                    config.problems.append(f"rule {rule.namespace}/{rule.name} spec.actions[{i}]: instance "
                                           f"{reference!r} does not exist; skipped")
                    continue
                used.append(instance)
            actions.append(Action(handler, tuple(used)))
        match = rule.spec.get("match", "").strip()
        config.rules.append(Rule(f"{rule.name}.rule.{rule.namespace}", rule.namespace, parse(match) if match else None,
                                 tuple(actions), rule.namespace == config_namespace))
    for binding in (r for r in resources if r.group == MIXER_GROUP and r.kind == "QuotaSpecBinding"):
        charges: list[QuotaCharge] = []
        for reference in binding.spec.get("quotaSpecs", []):
            spec = specs.get((reference.get("namespace") or binding.namespace, reference.get("name", "")))
            if spec is None:
                config.problems.append(f"QuotaSpecBinding {binding.namespace}/{binding.name}: QuotaSpec "
                                       f"{reference.get('name')!r} does not exist")
                continue
            for spec_rule in spec.spec.get("rules", []):
                matches = tuple(_clauses(m) for m in spec_rule.get("match", []) or [])
                charges.extend(QuotaCharge(q.get("quota", ""), int(q.get("charge", 1)), matches)
                               for q in spec_rule.get("quotas", []))
        for service in binding.spec.get("services", []):
            if service.get("service") == "*":
                config.wildcard.extend(charges)
                continue
            bound = _binding_key(service, binding.namespace)
            if isinstance(bound, str):
                config.host_bindings.setdefault(bound, []).extend(charges)
            else:
                config.bindings.setdefault(bound, []).extend(charges)
    return config
