"""Mixer's policy kinds (config.istio.io/v1alpha2) as Mizzen's policy service runs them.

The rules are Istio 1.0/1.1's own, from where Mixer checked them: the rule/handler/instance
resolution of mixer/pkg/runtime/config/ephemeral.go (a match must be BOOL, an action needs
instances, an instance once per action and of a template its handler takes), the adapters'
`Validate` (mixer/adapter/list/list.go, memquota/memquota.go, redisquota/redisquota.go) and
pilot's ValidateQuotaSpec / ValidateQuotaSpecBinding.  Each resource is checked on its own:
whether a referenced handler or instance exists is the policy service's business, but a
reference that could never name one Mizzen runs (another adapter's kind, bad syntax) and an
expression that does not type-check are refused at apply time, naming the field.

Mizzen's policy service runs the check and quota adapters `denier`, `listchecker`,
`memquota` and `redisquota`, with the templates `checknothing`, `listentry` and `quota`; a
handler or instance of any other adapter or template is refused, saying so.

The generic `handler` and `instance` (Istio 1.1) carry their params as a struct whose
schema depends on `compiledAdapter` / `compiledTemplate`, which the schema walk cannot
know: their validators walk `params` with the right schema here and put the normalised
params back into the spec, so those kinds are normalised like every other.

Expressions are CEXL (Mixer's expression language), type-checked with `libs.cexl`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from libs.config._errors import FieldError
from libs.config.durations import parse_duration
from libs.config.schema import Message, normalise
from libs.config.schema.mixer import ADAPTER_PARAMS, TEMPLATE_PARAMS
from libs.config.validation import hosts, http, labels
from libs.config.validation._checker import Checker

SUPPORTED_ADAPTERS = tuple(ADAPTER_PARAMS)
SUPPORTED_TEMPLATES = tuple(TEMPLATE_PARAMS)
# The templates each adapter takes (Mixer's adapter inventory, mixer/adapter/metadata).
ADAPTER_TEMPLATES: dict[str, tuple[str, ...]] = {
    "denier": ("checknothing", "listentry", "quota"),
    "listchecker": ("listentry",),
    "memquota": ("quota",),
    "redisquota": ("quota",),
}
# Every other adapter and template Istio 1.0/1.1 installed a kind for (install/kubernetes/
# helm/istio/templates/crds.yaml), so that a reference to one gets a precise answer.
OTHER_ADAPTERS = frozenset({
    "bypass", "circonus", "cloudwatch", "dogstatsd", "fluentd", "kubernetesenv", "noop", "opa", "prometheus",
    "rbac", "servicecontrol", "signalfx", "solarwinds", "stackdriver", "statsd", "stdio", "zipkin",
})
OTHER_TEMPLATES = frozenset({
    "apikey", "authorization", "edge", "kubernetes", "logentry", "metric", "reportnothing",
    "servicecontrolreport", "tracespan",
})
GENERIC_HANDLER = "handler"
GENERIC_INSTANCE = "instance"
# google.rpc.Code: OK (0) to UNAUTHENTICATED (16).
_MAX_RPC_CODE = 16
# Mixer's listchecker defaults (mixer/adapter/metadata/inventory.go), used when unset.
_LIST_REFRESH_DEFAULT = Decimal(60)
_LIST_TTL_DEFAULT = Decimal(300)
# Resource names are DNS-1123 subdomains, but a reference splits on dots, so a referenced
# name is one label (of up to 253 characters).
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

_ADAPTERS_TEXT = ", ".join(SUPPORTED_ADAPTERS)
_TEMPLATES_TEXT = ", ".join(SUPPORTED_TEMPLATES)


def _adapter_problem(adapter: str) -> str:
    if adapter in OTHER_ADAPTERS:
        return f"Mizzen's policy service does not run the {adapter} adapter (it runs {_ADAPTERS_TEXT})"
    return f"unknown adapter {adapter!r} (Mizzen's policy service runs {_ADAPTERS_TEXT})"


def _template_problem(template: str) -> str:
    if template in OTHER_TEMPLATES:
        return f"Mizzen's policy service does not support the {template} template (it supports {_TEMPLATES_TEXT})"
    return f"unknown template {template!r} (Mizzen's policy service supports {_TEMPLATES_TEXT})"


# --- expressions -------------------------------------------------------------------------


def expression(check: Checker, path: str, text: str, *, boolean: bool = False) -> None:
    """Type-check a CEXL expression; a match (`boolean`) must be BOOL."""
    # Imported here: libs.cexl is a separate library that may itself use libs.config.
    from libs.cexl import CexlError, ValueType
    from libs.cexl import check as type_of

    if not text.strip():
        check.error(path, "an expression is required")
        return
    try:
        found = type_of(text)
    except CexlError as exc:
        check.error(path, str(exc))
        return
    if boolean and found != ValueType.BOOL:
        check.error(path, f"the expression is of type {getattr(found, 'name', found)}; a match must be BOOL")


# --- references: `name`, `name.kind`, `name.namespace`, `name.kind.namespace` ---------------


@dataclass(frozen=True)
class _Role:
    noun: str  # "handler" or "instance"
    generic: str
    supported: tuple[str, ...]
    unsupported: frozenset[str]
    problem: Callable[[str], str]
    # The other role's kinds, for "quota is an instance kind, not a handler kind".
    other_noun: str
    other_kinds: frozenset[str]

    def known(self, kind: str) -> bool:
        return kind == self.generic or kind in self.supported or kind in self.unsupported or kind in self.other_kinds


_HANDLER = _Role("handler", GENERIC_HANDLER, SUPPORTED_ADAPTERS, OTHER_ADAPTERS, _adapter_problem, "instance",
                 frozenset({GENERIC_INSTANCE, *SUPPORTED_TEMPLATES, *OTHER_TEMPLATES}))
_INSTANCE = _Role("instance", GENERIC_INSTANCE, SUPPORTED_TEMPLATES, OTHER_TEMPLATES, _template_problem, "handler",
                  frozenset({GENERIC_HANDLER, *SUPPORTED_ADAPTERS, *OTHER_ADAPTERS}))


def _a(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def _is_namespace(value: str) -> bool:
    return len(value) <= 63 and labels.K8S_DNS1123_LABEL.match(value) is not None


@dataclass(frozen=True)
class Reference:
    name: str
    kind: str  # an adapter or template kind, or the generic "handler" / "instance"
    namespace: str


def reference(check: Checker, path: str, value: str, role: _Role) -> Reference | None:
    """Resolve a handler or instance reference as Mixer's `canonicalize` does, or report why
    it cannot name one Mizzen runs.  Two parts are ambiguous in Mixer (1.0's `name.kind`,
    1.1's `name.namespace`): a known kind reads as a kind, anything else as a namespace."""
    if not value:
        check.error(path, f"a {role.noun} reference is required")
        return None
    parts = value.split(".")
    if len(parts) > 3 or not all(parts):
        check.error(path, f"{value!r} is not a {role.noun} reference (name, name.kind, name.namespace or "
                          "name.kind.namespace)")
        return None
    name = parts[0]
    if len(name) > 253 or not _NAME.match(name):
        check.error(path, f"{value!r}: {name!r} is not a resource name")
        return None
    if len(parts) == 1:
        return Reference(name, role.generic, check.namespace)
    kind, namespace = parts[1], parts[2] if len(parts) == 3 else check.namespace
    if len(parts) == 2 and not role.known(kind):
        if not _is_namespace(kind):
            check.error(path, f"{value!r}: {kind!r} is neither a {role.noun} kind ({', '.join(role.supported)}) "
                              "nor a namespace")
            return None
        return Reference(name, role.generic, kind)
    if not _is_namespace(namespace):
        check.error(path, f"{value!r}: {namespace!r} is not a namespace name")
        return None
    if kind in role.other_kinds:
        check.error(path, f"{value!r}: {kind} is {_a(role.other_noun)} kind, not {_a(role.noun)} kind")
        return None
    if kind != role.generic and kind not in role.supported:
        check.error(path, f"{value!r}: {role.problem(kind)}")
        return None
    return Reference(name, kind, namespace)


# --- rule --------------------------------------------------------------------------------


def _header_operations(check: Checker, path: str, operations: list[dict[str, Any]],
                       action_names: set[str]) -> None:
    for i, operation in enumerate(operations):
        where = f"{path}[{i}]"
        http.header_name(check, f"{where}.name", operation.get("name", ""))
        values = operation.get("values", [])
        if operation.get("operation") == "REMOVE" and values:
            check.warn(f"{where}.values", "values are ignored when operation is REMOVE")
            continue
        for j, value in enumerate(values):
            root = value.strip().split(".", 1)[0]
            if root in action_names and value.strip().startswith(f"{root}.output."):
                # Mixer's `<action>.output.<field>`: only check templates with outputs produce it.
                check.error(f"{where}.values[{j}]", f"{value!r}: action {root!r} has no output (the templates "
                                                    f"Mizzen supports, {_TEMPLATES_TEXT}, produce none)")
                continue
            expression(check, f"{where}.values[{j}]", value)


def validate_rule(spec: dict[str, Any], check: Checker) -> None:
    match = spec.get("match", "")
    # An empty match always applies.
    if match.strip():
        expression(check, "spec.match", match, boolean=True)
    actions = spec.get("actions", [])
    operations = {field: spec.get(field, []) for field in ("requestHeaderOperations", "responseHeaderOperations")}
    if not actions and not any(operations.values()):
        # Mixer drops such a rule ("No valid actions found in rule").
        check.error("spec.actions", "a rule needs at least one action")
    names: set[str] = set()
    for i, action in enumerate(actions):
        where = f"spec.actions[{i}]"
        handler = reference(check, f"{where}.handler", action.get("handler", ""), _HANDLER)
        instances = action.get("instances", [])
        if not instances:
            check.error(f"{where}.instances", "an action needs at least one instance")
        seen: dict[Reference, int] = {}
        for j, value in enumerate(instances):
            instance = reference(check, f"{where}.instances[{j}]", value, _INSTANCE)
            if instance is None:
                continue
            if instance in seen:
                check.error(f"{where}.instances[{j}]", f"instance {value!r} is already listed as "
                                                       f"instances[{seen[instance]}] of this action")
                continue
            seen[instance] = j
            # Only 1.0's typed references say which adapter and template they name.
            takes = ADAPTER_TEMPLATES.get(handler.kind, ()) if handler is not None else ()
            if handler is not None and takes and instance.kind in SUPPORTED_TEMPLATES and instance.kind not in takes:
                check.error(f"{where}.instances[{j}]", f"{value!r} is a {instance.kind} instance, which the "
                                                       f"{handler.kind} adapter does not take (it takes "
                                                       f"{', '.join(takes)})")
        if action.get("name"):
            names.add(action["name"])
    for field, values in operations.items():
        _header_operations(check, f"spec.{field}", values, names)


# --- adapter params ----------------------------------------------------------------------

ParamsValidator = Callable[[Checker, str, dict[str, Any]], None]


def _seconds(value: str | None) -> Decimal | None:
    return None if value is None else parse_duration(value)


def _positive(check: Checker, path: str, value: int | None, what: str) -> None:
    if value is None:
        check.error(path, f"{what} is required and must be greater than 0")
    elif value <= 0:
        check.error(path, f"{what} {value} must be greater than 0")


def _denier(check: Checker, path: str, params: dict[str, Any]) -> None:
    status = params.get("status", {})
    code = status.get("code")
    if code is not None:
        if not 0 <= code <= _MAX_RPC_CODE:
            check.error(f"{path}.status.code", f"{code} is not a google.rpc.Code (0-{_MAX_RPC_CODE})")
        elif code == 0:
            check.warn(f"{path}.status.code", "code 0 is OK: this denier lets every request through")
    for i, detail in enumerate(status.get("details", [])):
        if not isinstance(detail, dict) or not isinstance(detail.get("@type"), str):
            check.error(f"{path}.status.details[{i}]", "a detail must be a google.protobuf.Any: an object with "
                                                       "an @type")
    if params.get("validUseCount", 0) < 0:
        check.error(f"{path}.validUseCount", f"validUseCount {params['validUseCount']} must not be negative")


def _listchecker(check: Checker, path: str, params: dict[str, Any]) -> None:
    url = params.get("providerUrl", "")
    overrides = params.get("overrides", [])
    if url:
        try:
            parts = urlsplit(url)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname)
            _ = parts.port  # raises ValueError for a bad port
        except ValueError:
            valid = False
        if not valid:
            check.error(f"{path}.providerUrl", f"{url!r} is not an http or https URL with a host")
        refresh = _seconds(params.get("refreshInterval"))
        ttl = _seconds(params.get("ttl"))
        effective_refresh = _LIST_REFRESH_DEFAULT if refresh is None else refresh
        effective_ttl = _LIST_TTL_DEFAULT if ttl is None else ttl
        if effective_refresh < 1:
            check.error(f"{path}.refreshInterval", f"refreshInterval {params['refreshInterval']} must be at "
                                                   "least 1s")
        elif effective_ttl <= effective_refresh:
            # Mixer's intent ("ttl must be > refreshInterval"): a list must outlive a refresh.
            shown_ttl = params.get("ttl", "300s (the default)")
            shown_refresh = params.get("refreshInterval", "60s (the default)")
            check.error(f"{path}.ttl" if ttl is not None else f"{path}.refreshInterval",
                        f"ttl {shown_ttl} must be longer than refreshInterval {shown_refresh}")
    elif not overrides:
        effect = "allows every request" if params.get("blacklist") else "denies every request"
        check.warn(path, f"neither providerUrl nor overrides is set: the list is empty, so this "
                         f"{'blacklist' if params.get('blacklist') else 'whitelist'} {effect}")
    if params.get("cachingUseCount", 0) < 0:
        check.error(f"{path}.cachingUseCount", f"cachingUseCount {params['cachingUseCount']} must not be negative")
    entry_type = params.get("entryType", "STRINGS")
    for i, override in enumerate(overrides):
        where = f"{path}.overrides[{i}]"
        if entry_type == "IP_ADDRESSES":
            problem = hosts.ip_or_cidr_problem(override)
            if problem:
                check.error(where, f"{problem} (entryType is IP_ADDRESSES)")
        elif entry_type == "REGEX":
            http.regex(check, where, override)


def _quota_names(check: Checker, path: str, quotas: list[dict[str, Any]]) -> None:
    if not quotas:
        check.error(path, "at least one quota is required")
    seen: dict[str, int] = {}
    for i, quota in enumerate(quotas):
        name = quota.get("name", "")
        if not name:
            check.error(f"{path}[{i}].name", "a quota needs the name of the quota instance it limits")
        elif name in seen:
            check.error(f"{path}[{i}].name", f"quota {name!r} is already defined by quotas[{seen[name]}]")
        else:
            seen[name] = i
            if name.count(".") != 2:
                check.warn(f"{path}[{i}].name", f"{name!r}: Mixer matched a quota by its instance's fully "
                                                "qualified name, name.kind.namespace (e.g. "
                                                "requestcountquota.instance.istio-system)")


def _overrides(check: Checker, path: str, overrides: list[dict[str, Any]]) -> None:
    for i, override in enumerate(overrides):
        _positive(check, f"{path}[{i}].maxAmount", override.get("maxAmount"), "maxAmount")
        if not override.get("dimensions"):
            # It would match every request, shadowing the quota and every later override.
            check.error(f"{path}[{i}].dimensions", "an override needs at least one dimension")


def _valid_duration(check: Checker, path: str, value: str | None) -> None:
    if value is None:
        check.error(path, "validDuration is required: Mizzen's policy service runs rate-limit quotas only")
    elif parse_duration(value) <= 0:
        check.error(path, f"validDuration {value} must be greater than 0: Mizzen's policy service runs rate-limit "
                          "quotas only")


def _memquota(check: Checker, path: str, params: dict[str, Any]) -> None:
    quotas = params.get("quotas", [])
    _quota_names(check, f"{path}.quotas", quotas)
    for i, quota in enumerate(quotas):
        where = f"{path}.quotas[{i}]"
        _positive(check, f"{where}.maxAmount", quota.get("maxAmount"), "maxAmount")
        _valid_duration(check, f"{where}.validDuration", quota.get("validDuration"))
        overrides = quota.get("overrides", [])
        _overrides(check, f"{where}.overrides", overrides)
        for j, override in enumerate(overrides):
            duration = override.get("validDuration")
            if duration is None:
                check.warn(f"{where}.overrides[{j}].validDuration",
                           "not set: Mixer made such an override a non-expiring allocation quota; Mizzen's policy "
                           "service applies the quota's validDuration")
            elif parse_duration(duration) <= 0:
                _valid_duration(check, f"{where}.overrides[{j}].validDuration", duration)
    dedup = params.get("minDeduplicationDuration")
    if dedup is not None and parse_duration(dedup) <= 0:
        check.error(f"{path}.minDeduplicationDuration", f"minDeduplicationDuration {dedup} must be greater than 0")


def host_port_problem(value: str) -> str | None:
    """Why `value` is not `host:port` (a DNS name or IP; IPv6 in brackets), or None."""
    host, colon, port = value.rpartition(":")
    if not colon or not host or not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        return f"{value!r} is not host:port (e.g. redis-master:6379)"
    if host.startswith("[") and host.endswith("]"):
        return None if ":" in host and hosts.is_ip(host[1:-1]) else f"{value!r}: {host} is not an IPv6 address"
    if hosts.is_ip(host) and ":" not in host:
        return None
    problem = hosts.fqdn_problem(host)
    return f"{value!r}: {problem}" if problem else None


def _redisquota(check: Checker, path: str, params: dict[str, Any]) -> None:
    quotas = params.get("quotas", [])
    _quota_names(check, f"{path}.quotas", quotas)
    for i, quota in enumerate(quotas):
        where = f"{path}.quotas[{i}]"
        _positive(check, f"{where}.maxAmount", quota.get("maxAmount"), "maxAmount")
        _valid_duration(check, f"{where}.validDuration", quota.get("validDuration"))
        valid = _seconds(quota.get("validDuration"))
        bucket = _seconds(quota.get("bucketDuration"))
        if quota.get("rateLimitAlgorithm") == "ROLLING_WINDOW":
            if not bucket:
                check.error(f"{where}.bucketDuration", "bucketDuration must be greater than 0 for ROLLING_WINDOW")
            elif valid and valid <= bucket:
                check.error(f"{where}.validDuration", f"validDuration {quota['validDuration']} must be longer than "
                                                      f"bucketDuration {quota['bucketDuration']} for ROLLING_WINDOW")
        elif bucket is not None:
            check.warn(f"{where}.bucketDuration", "bucketDuration is ignored with FIXED_WINDOW")
        _overrides(check, f"{where}.overrides", quota.get("overrides", []))
    url = params.get("redisServerUrl", "")
    if not url:
        check.error(f"{path}.redisServerUrl", "redisServerUrl (host:port of the Redis server) is required")
    else:
        problem = host_port_problem(url)
        if problem:
            check.error(f"{path}.redisServerUrl", problem)
    pool = params.get("connectionPoolSize")
    if pool is not None and pool <= 0:
        check.error(f"{path}.connectionPoolSize", f"connectionPoolSize {pool} must be greater than 0")


ADAPTER_VALIDATORS: dict[str, ParamsValidator] = {
    "denier": _denier,
    "listchecker": _listchecker,
    "memquota": _memquota,
    "redisquota": _redisquota,
}

# --- template params ---------------------------------------------------------------------


def _checknothing(check: Checker, path: str, params: dict[str, Any]) -> None:
    """No params."""


def _listentry(check: Checker, path: str, params: dict[str, Any]) -> None:
    # Any type: an IP list is checked with `source.ip`, a string list with a label.
    expression(check, f"{path}.value", params.get("value", ""))


def _quota(check: Checker, path: str, params: dict[str, Any]) -> None:
    for name, value in params.get("dimensions", {}).items():
        if not name:
            check.error(f"{path}.dimensions", "a dimension name must not be empty")
            continue
        expression(check, f"{path}.dimensions[{name}]", value)


TEMPLATE_VALIDATORS: dict[str, ParamsValidator] = {
    "checknothing": _checknothing,
    "listentry": _listentry,
    "quota": _quota,
}


def _kind_validator(schema_validators: dict[str, ParamsValidator], kind: str) -> Callable[[dict[str, Any], Checker],
                                                                                      None]:
    """The validator of a 1.0 per-adapter or per-template kind, whose spec is the params."""
    params_validator = schema_validators[kind]

    def validate(spec: dict[str, Any], check: Checker) -> None:
        params_validator(check, "spec", spec)

    validate.__name__ = f"validate_{kind}"
    return validate


ADAPTER_KIND_VALIDATORS = {kind: _kind_validator(ADAPTER_VALIDATORS, kind) for kind in SUPPORTED_ADAPTERS}
TEMPLATE_KIND_VALIDATORS = {kind: _kind_validator(TEMPLATE_VALIDATORS, kind) for kind in SUPPORTED_TEMPLATES}

# --- handler, instance (Istio 1.1) -------------------------------------------------------


def _params(check: Checker, spec: dict[str, Any], schema: Message, validator: ParamsValidator) -> None:
    """Walk `spec.params` with the adapter's or template's schema, put the normalised params
    back, and run its rules on them if their shape is right."""
    problems: list[FieldError] = []
    params = normalise(spec.get("params", {}), schema, "spec.params", problems)
    for problem in problems:
        (check.warn if problem.warning else check.error)(problem.path, problem.reason)
    if any(not p.warning for p in problems):
        return
    if "params" in spec:
        spec["params"] = params
    validator(check, "spec.params", params)


def _ignored_name(check: Checker, spec: dict[str, Any]) -> None:
    name = spec.get("name")
    if name and name != check.name:
        check.warn("spec.name", f"ignored: this {name!r} is not how rules refer to it; they use metadata.name "
                                f"{check.name!r}")


def validate_handler(spec: dict[str, Any], check: Checker) -> None:
    _ignored_name(check, spec)
    compiled, adapter = spec.get("compiledAdapter", ""), spec.get("adapter", "")
    if not compiled:
        if adapter:
            check.warn("spec.adapter", f"out-of-process adapter {adapter!r} is not supported: Mizzen's policy "
                                       f"service never calls this handler (it runs {_ADAPTERS_TEXT})")
        else:
            check.error("spec.compiledAdapter", f"compiledAdapter is required (one of {_ADAPTERS_TEXT})")
        return
    if adapter:
        check.warn("spec.adapter", "ignored: compiledAdapter is set")
    if compiled not in ADAPTER_PARAMS:
        check.error("spec.compiledAdapter", _adapter_problem(compiled))
        return
    if "connection" in spec:
        check.warn("spec.connection", f"ignored: connection is for out-of-process adapters, and {compiled} is "
                                      "compiled in")
    _params(check, spec, ADAPTER_PARAMS[compiled], ADAPTER_VALIDATORS[compiled])


def validate_instance(spec: dict[str, Any], check: Checker) -> None:
    _ignored_name(check, spec)
    compiled, template = spec.get("compiledTemplate", ""), spec.get("template", "")
    if not compiled:
        if template:
            check.warn("spec.template", f"template {template!r} is not supported: Mizzen's policy service only "
                                        f"supports the compiled-in templates {_TEMPLATES_TEXT}")
        else:
            check.error("spec.compiledTemplate", f"compiledTemplate is required (one of {_TEMPLATES_TEXT})")
        return
    if template:
        check.warn("spec.template", "ignored: compiledTemplate is set")
    if compiled not in TEMPLATE_PARAMS:
        check.error("spec.compiledTemplate", _template_problem(compiled))
        return
    if spec.get("attributeBindings"):
        check.warn("spec.attributeBindings", f"ignored: only attribute-generating templates produce attributes, "
                                             f"and {compiled} is a check or quota template")
    _params(check, spec, TEMPLATE_PARAMS[compiled], TEMPLATE_VALIDATORS[compiled])


# --- QuotaSpec, QuotaSpecBinding ---------------------------------------------------------


def validate_quota_spec(spec: dict[str, Any], check: Checker) -> None:
    rules = spec.get("rules", [])
    if not rules:
        check.error("spec.rules", "at least one rule is required")
    for i, rule in enumerate(rules):
        where = f"spec.rules[{i}]"
        for j, match in enumerate(rule.get("match", [])):
            for attribute, string_match in match.get("clause", {}).items():
                path = f"{where}.match[{j}].clause[{attribute}]"
                if not attribute:
                    check.error(f"{where}.match[{j}].clause", "a clause needs an attribute name")
                    continue
                for field in ("exact", "prefix"):
                    if string_match.get(field) == "":
                        check.error(f"{path}.{field}", f"{field} must not be empty")
                http.string_match(check, path, string_match)
        quotas = rule.get("quotas", [])
        if not quotas:
            check.error(f"{where}.quotas", "at least one quota is required")
        for j, quota in enumerate(quotas):
            path = f"{where}.quotas[{j}]"
            name = quota.get("quota", "")
            if not name:
                check.error(f"{path}.quota", "the name of the quota instance to charge is required")
            else:
                found = reference(check, f"{path}.quota", name, _INSTANCE)
                if found is not None and found.kind not in ("quota", GENERIC_INSTANCE):
                    check.error(f"{path}.quota", f"{name!r} is a {found.kind} instance; a QuotaSpec charges quota "
                                                 "instances")
            charge = quota.get("charge")
            if charge is None or charge <= 0:
                check.error(f"{path}.charge", "charge must be greater than 0" if charge is None else
                            f"charge {charge} must be greater than 0")


def _service(check: Checker, path: str, service: dict[str, Any]) -> None:
    """Pilot's ValidateMixerService."""
    name, fqdn = service.get("name", ""), service.get("service", "")
    if not name and not fqdn:
        check.error(path, "name or service is required")
    elif name and fqdn:
        check.error(path, "set either name or service, not both")
    elif fqdn:
        for field in ("namespace", "domain"):
            if service.get(field):
                check.error(f"{path}.{field}", f"{field} is not allowed when service is set")
        if fqdn != "*":
            hosts.check_wildcard_domain(check, f"{path}.service", fqdn)
    elif not hosts.is_dns_label(name):
        check.error(f"{path}.name", f"name {name!r} must be a DNS-1123 label")
    namespace = service.get("namespace", "")
    if namespace and not hosts.is_dns_label(namespace):
        check.error(f"{path}.namespace", f"namespace {namespace!r} must be a DNS-1123 label")
    domain = service.get("domain", "")
    if domain:
        hosts.check_fqdn(check, f"{path}.domain", domain)
    labels.labels(check, f"{path}.labels", service.get("labels", {}))


def validate_quota_spec_binding(spec: dict[str, Any], check: Checker) -> None:
    services = spec.get("services", [])
    if not services:
        check.error("spec.services", "at least one service is required")
    for i, service in enumerate(services):
        _service(check, f"spec.services[{i}]", service)
    references = spec.get("quotaSpecs", [])
    if not references:
        check.error("spec.quotaSpecs", "at least one QuotaSpec is required")
    for i, reference_ in enumerate(references):
        path = f"spec.quotaSpecs[{i}]"
        name = reference_.get("name", "")
        if not name:
            check.error(f"{path}.name", "the QuotaSpec's name is required")
        elif len(name) > 253 or not labels.K8S_DNS1123_SUBDOMAIN.match(name):
            check.error(f"{path}.name", f"{name!r} is not a resource name")
        namespace = reference_.get("namespace", "")
        if namespace and not hosts.is_dns_label(namespace):
            check.error(f"{path}.namespace", f"namespace {namespace!r} must be a DNS-1123 label")
