"""The ConfigMap `ratelimit-config`: every data entry an envoyproxy/ratelimit configuration
that parses, and no domain defined twice, with paths under what users edit (`data.<entry>`)."""

from __future__ import annotations

from typing import Any

from libs.config.ratelimit import RateLimitConfigError, parse
from libs.config.validation._checker import Checker


def validate(spec: dict[str, Any], check: Checker) -> None:
    owners: dict[str, str] = {}
    for entry, document in sorted((spec.get("configs") or {}).items()):
        try:
            domain, _ = parse(document, f"data.{entry}")
        except RateLimitConfigError as exc:
            check.error(exc.path, exc.reason)
            continue
        if domain in owners:
            check.error(f"data.{entry}.domain", f"{domain!r} is already defined in data.{owners[domain]}")
        owners[domain] = entry
