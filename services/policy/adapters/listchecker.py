"""The listchecker adapter: is the instance's value on a list?

A whitelist answers NOT_FOUND ("<value> is not whitelisted") for values missing from it,
a blacklist PERMISSION_DENIED ("<value> is blacklisted") for values on it, as Mixer's
list adapter.  The list is the inline `overrides`, plus, with a `providerUrl`, the lines
fetched from it every `refreshInterval`; a list not refreshed within `ttl` is dropped, and
checks then fail (UNAVAILABLE) rather than guess.  Entry types: STRINGS,
CASE_INSENSITIVE_STRINGS, IP_ADDRESSES (addresses and CIDRs), REGEX (RE2, whole match).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import re2
import structlog

from libs.config.durations import parse_duration
from services.policy.adapters.results import CheckResult
from services.policy.status import NOT_FOUND, PERMISSION_DENIED, UNAVAILABLE, Status

log = structlog.get_logger(__name__)

# Mixer's list adapter defaults.
REFRESH_S = 60.0
TTL_S = 300.0
CACHING_S = 300.0
CACHING_USES = 10000
MAX_LIST_BYTES = 16 * 1024 * 1024


class ListError(ValueError):
    """A list (or a value checked against it) that cannot be read as its entry type."""


def _entries(lines: Iterable[str]) -> list[str]:
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


@dataclass(frozen=True)
class _Matcher:
    entry_type: str
    strings: frozenset[str] = frozenset()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    patterns: tuple[Any, ...] = ()

    @classmethod
    def build(cls, entry_type: str, entries: list[str]) -> _Matcher:
        if entry_type == "IP_ADDRESSES":
            try:
                return cls(entry_type, networks=tuple(ipaddress.ip_network(e, strict=False) for e in entries))
            except ValueError as exc:
                raise ListError(f"not an IP address or CIDR: {exc}") from exc
        if entry_type == "REGEX":
            try:
                return cls(entry_type, patterns=tuple(re2.compile(e) for e in entries))
            except re2.error as exc:
                raise ListError(f"not an RE2 regular expression: {exc}") from exc
        if entry_type == "CASE_INSENSITIVE_STRINGS":
            return cls(entry_type, strings=frozenset(e.lower() for e in entries))
        return cls(entry_type, strings=frozenset(entries))

    def contains(self, value: Any) -> bool:
        text = str(value)
        if self.entry_type == "IP_ADDRESSES":
            try:
                address = ipaddress.ip_address(text)
            except ValueError as exc:
                raise ListError(f"{text!r} is not an IP address") from exc
            return any(address in network for network in self.networks)
        if self.entry_type == "REGEX":
            return any(pattern.fullmatch(text) for pattern in self.patterns)
        if self.entry_type == "CASE_INSENSITIVE_STRINGS":
            return text.lower() in self.strings
        return text in self.strings


@dataclass
class ListChecker:
    overrides: list[str]
    entry_type: str = "STRINGS"
    blacklist: bool = False
    provider_url: str = ""
    refresh_s: float = REFRESH_S
    ttl_s: float = TTL_S
    caching_s: float = CACHING_S
    caching_uses: int = CACHING_USES
    clock: Callable[[], float] = time.monotonic
    _matcher: _Matcher | None = field(default=None, init=False)
    _fetched_at: float = field(default=0.0, init=False)
    _digest: bytes = field(default=b"", init=False)

    def __post_init__(self) -> None:
        if not self.provider_url:
            self._matcher = _Matcher.build(self.entry_type, _entries(self.overrides))

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> ListChecker:
        def seconds(key: str, default: float) -> float:
            return float(parse_duration(params[key])) if params.get(key) else default

        return cls(overrides=list(params.get("overrides", [])), entry_type=params.get("entryType", "STRINGS"),
                   blacklist=bool(params.get("blacklist", False)), provider_url=params.get("providerUrl", ""),
                   refresh_s=seconds("refreshInterval", REFRESH_S), ttl_s=seconds("ttl", TTL_S),
                   caching_s=seconds("cachingInterval", CACHING_S),
                   caching_uses=int(params.get("cachingUseCount") or CACHING_USES))

    def install(self, body: bytes) -> bool:
        """A fetched list, with the overrides; whether it changed."""
        digest = hashlib.sha256(body).digest()
        if digest == self._digest and self._matcher is not None:
            self._fetched_at = self.clock()
            return False
        lines = body.decode("utf-8", errors="replace").splitlines()
        # A list that does not parse (ListError) leaves the last one, and its age, as they were.
        matcher = _Matcher.build(self.entry_type, _entries([*lines, *self.overrides]))
        self._matcher, self._digest, self._fetched_at = matcher, digest, self.clock()
        return True

    def _current(self) -> _Matcher | None:
        if self.provider_url and self._matcher is not None and self.clock() - self._fetched_at > self.ttl_s:
            log.warning("list not refreshed within its ttl; dropped", provider_url=self.provider_url,
                        ttl_s=self.ttl_s)
            self._matcher = None
        return self._matcher

    def check(self, instance: dict[str, Any]) -> CheckResult:
        matcher = self._current()
        value = instance.get("value", "")
        if matcher is None:
            # Like Mixer: no list (never fetched, or expired) is an error, not an answer.
            return CheckResult(Status(UNAVAILABLE, f"list from {self.provider_url} is not available"), 0, 0)
        try:
            found = matcher.contains(value)
        except ListError as exc:
            return CheckResult(Status(3, str(exc)), self.caching_s, self.caching_uses)
        if self.blacklist and found:
            return CheckResult(Status(PERMISSION_DENIED, f"{value} is blacklisted"), self.caching_s, self.caching_uses)
        if not self.blacklist and not found:
            return CheckResult(Status(NOT_FOUND, f"{value} is not whitelisted"), self.caching_s, self.caching_uses)
        return CheckResult(Status(), self.caching_s, self.caching_uses)

    async def refresh_forever(self, client: httpx.AsyncClient) -> None:
        """Fetch the provider's list now and every `refresh_s`; keep the last good one on failure."""
        while True:
            try:
                response = await client.get(self.provider_url, timeout=10.0)
                if response.status_code != 200:
                    raise ListError(f"answered {response.status_code}")
                if len(response.content) > MAX_LIST_BYTES:
                    raise ListError(f"list is larger than {MAX_LIST_BYTES} bytes")
                if self.install(response.content):
                    log.info("list installed", provider_url=self.provider_url)
            except (httpx.HTTPError, ListError) as exc:
                log.warning("could not fetch list; keeping the last one until its ttl", provider_url=self.provider_url,
                            error=str(exc))
            await asyncio.sleep(self.refresh_s)
