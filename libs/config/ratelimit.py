"""envoyproxy/ratelimit's configuration format, the modern alternative to memquota and
redisquota.  Users write it as Istio's "Enabling Rate Limits using Envoy" task does, in the
ConfigMap `ratelimit-config` (one configuration per data entry); galley validates it (the
internal kind RateLimitConfig) and the policy service answers Envoy's rate-limit calls for
its domains.

    domain: ratelimit
    descriptors:
    - key: PATH
      value: /productpage
      rate_limit: {unit: minute, requests_per_unit: 1}
    - key: PATH                      # any other value: a limit per distinct value
      rate_limit: {unit: minute, requests_per_unit: 100}
      descriptors: [...]             # nested: the request's next descriptor entry

As envoyproxy/ratelimit reads it: a request descriptor's entries are walked down the tree,
each matching `key` + `value` exactly, else a `value` ending in `*` by prefix, else the
`key` alone; the node the last entry reaches decides (its `rate_limit`, `unlimited`, or
nothing).  Windows are fixed and aligned to the unit; `shadow_mode` counts but never
limits.  Pure: documents in, lookups out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

# envoyproxy/ratelimit's units (a month is 30 days, a year 365).
UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800, "month": 2592000,
         "year": 31536000}
_FIELDS = frozenset({"key", "value", "rate_limit", "unlimited", "shadow_mode", "detailed_metric", "descriptors"})


class RateLimitConfigError(ValueError):
    """A configuration that cannot be used: the field's path and the reason."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class RateLimit:
    requests_per_unit: int
    unit: str

    @property
    def unit_s(self) -> int:
        return UNITS[self.unit]


@dataclass
class DescriptorTree:
    limit: RateLimit | None = None
    unlimited: bool = False
    shadow: bool = False
    exact: dict[tuple[str, str], DescriptorTree] = field(default_factory=dict)
    prefixes: list[tuple[str, str, DescriptorTree]] = field(default_factory=list)
    any_value: dict[str, DescriptorTree] = field(default_factory=dict)

    def child(self, key: str, value: str) -> DescriptorTree | None:
        found = self.exact.get((key, value))
        if found is not None:
            return found
        for wanted, prefix, node in self.prefixes:
            if wanted == key and value.startswith(prefix):
                return node
        return self.any_value.get(key)


@dataclass(frozen=True)
class RateLimitMatch:
    limit: RateLimit | None  # None: no limit applies (no match, or unlimited)
    # The counter's key: the domain and each entry of the request's descriptor (a key-only
    # node counts each distinct value apart, as envoyproxy/ratelimit does).
    key: str = ""
    shadow: bool = False


@dataclass
class RateLimits:
    """Every configured domain's descriptor tree."""

    domains: dict[str, DescriptorTree] = field(default_factory=dict)

    def find(self, domain: str, entries: Sequence[tuple[str, str]]) -> RateLimitMatch:
        node = self.domains.get(domain)
        if node is None or not entries:
            return RateLimitMatch(None)
        for key, value in entries:
            step = node.child(key, value)
            if step is None:
                return RateLimitMatch(None)
            node = step
        if node.unlimited or node.limit is None:
            return RateLimitMatch(None)
        key = "_".join([domain, *(f"{k}_{v}" for k, v in entries)])
        return RateLimitMatch(node.limit, key, node.shadow)


def _descriptors(items: Any, path: str) -> DescriptorTree:
    node = DescriptorTree()
    if items is None:
        return node
    if not isinstance(items, list):
        raise RateLimitConfigError(path, "must be a list of descriptors")
    seen: set[tuple[str, str]] = set()
    for index, item in enumerate(items):
        here = f"{path}[{index}]"
        if not isinstance(item, dict):
            raise RateLimitConfigError(here, "must be a mapping with `key`")
        unknown = sorted(set(item) - _FIELDS)
        if unknown:
            raise RateLimitConfigError(f"{here}.{unknown[0]}", "unknown field")
        key, value = item.get("key"), item.get("value", "")
        if not isinstance(key, str) or not key:
            raise RateLimitConfigError(f"{here}.key", "required, a non-empty string")
        if not isinstance(value, str):
            raise RateLimitConfigError(f"{here}.value", "must be a string")
        if (key, value) in seen:
            raise RateLimitConfigError(here, f"duplicate descriptor {key}={value or '(any)'}")
        seen.add((key, value))
        child = _descriptors(item.get("descriptors"), f"{here}.descriptors")
        child.unlimited = bool(item.get("unlimited", False))
        child.shadow = bool(item.get("shadow_mode", False))
        if item.get("rate_limit") is not None:
            if child.unlimited:
                raise RateLimitConfigError(f"{here}.rate_limit", "cannot be set with `unlimited: true`")
            child.limit = _limit(item["rate_limit"], f"{here}.rate_limit")
        if not value:
            node.any_value[key] = child
        elif value.endswith("*"):
            node.prefixes.append((key, value[:-1], child))
        else:
            node.exact[(key, value)] = child
    return node


def _limit(limit: Any, path: str) -> RateLimit:
    if not isinstance(limit, dict):
        raise RateLimitConfigError(path, "must be a mapping with `unit` and `requests_per_unit`")
    unit = str(limit.get("unit", "")).lower()
    if unit not in UNITS:
        raise RateLimitConfigError(f"{path}.unit", f"{limit.get('unit')!r} is not one of {', '.join(UNITS)}")
    amount = limit.get("requests_per_unit")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
        raise RateLimitConfigError(f"{path}.requests_per_unit", "required, a whole number >= 0")
    return RateLimit(amount, unit)


def parse(document: Any, path: str = "") -> tuple[str, DescriptorTree]:
    """One configuration's domain and descriptor tree; RateLimitConfigError names the field
    (under `path`) and what is wrong."""
    prefix = f"{path}." if path else ""
    if not isinstance(document, dict):
        raise RateLimitConfigError(path or "(document)", "must be a mapping with `domain` and `descriptors`")
    unknown = sorted(set(document) - {"domain", "descriptors"})
    if unknown:
        raise RateLimitConfigError(f"{prefix}{unknown[0]}", "unknown field")
    domain = document.get("domain")
    if not isinstance(domain, str) or not domain:
        raise RateLimitConfigError(f"{prefix}domain", "required, a non-empty string")
    return domain, _descriptors(document.get("descriptors"), f"{prefix}descriptors")


def combine(configs: Iterable[tuple[str, Any]]) -> tuple[RateLimits, list[str]]:
    """The domains of (source, document) configurations, in source order; a configuration
    that does not parse, or defines a domain already defined, is a problem and left out."""
    limits = RateLimits()
    problems: list[str] = []
    owners: dict[str, str] = {}
    for source, document in sorted(configs, key=lambda item: item[0]):
        try:
            domain, tree = parse(document)
        except RateLimitConfigError as exc:
            problems.append(f"{source}: {exc}")
            continue
        if domain in owners:
            problems.append(f"{source}: domain: {domain!r} is already defined in {owners[domain]}")
            continue
        owners[domain] = source
        limits.domains[domain] = tree
    return limits, problems
