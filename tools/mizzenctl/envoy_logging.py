"""`proxy-config log`: Envoy's logger levels, read and changed through its admin `/logging`
in istioctl's way (istioctl/pkg/proxyconfig: `--level <level>` for every logger,
`--level http:debug,redis:info` for named ones, `-r` to reset).  Pure: the parsing of
`--level` and of Envoy's listing.
"""

from __future__ import annotations

import re

__all__ = ["ALL_LOGGERS", "DEFAULT_LEVEL", "LEVELS", "LevelError", "parse_levels", "parse_listing"]

# Envoy's level names, with istioctl's spellings (`warn`; `none` for off).
LEVELS = {"trace": "trace", "debug": "debug", "info": "info", "warning": "warning", "warn": "warning",
          "error": "error", "critical": "critical", "off": "off", "none": "off"}
# The name istioctl gives the setting of every logger at once (Envoy's `?level=`).
ALL_LOGGERS = "level"
# The agent starts Envoy at `--envoy-log-level warning`; `-r` goes back to it.
DEFAULT_LEVEL = "warning"

_LINE = re.compile(r"^\s+([\w.]+): (\w+)$")


class LevelError(ValueError):
    """A `--level` naming an unknown level or logger."""


def parse_listing(text: str) -> dict[str, str]:
    """Envoy's `active loggers:` answer as {logger: level}."""
    return {match.group(1): match.group(2) for line in text.splitlines() if (match := _LINE.match(line))}


def _level(value: str) -> str:
    level = LEVELS.get(value.strip().lower())
    if level is None:
        raise LevelError(f"unrecognized logging level {value!r} (one of {', '.join(sorted(set(LEVELS.values())))})")
    return level


def parse_levels(spec: str, known: set[str]) -> list[tuple[str, str]]:
    """(logger, level) changes from `--level`: `<level>` sets every logger (first, as
    istioctl does), `<logger>:<level>` (or `=`) one of `known`."""
    every: list[tuple[str, str]] = []
    named: list[tuple[str, str]] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if ":" not in part and "=" not in part:
            every = [(ALL_LOGGERS, _level(part))]
            continue
        logger, _, value = re.split(r"([:=])", part, maxsplit=1)
        logger = logger.strip()
        if logger != ALL_LOGGERS and logger not in known:
            raise LevelError(f"unrecognized logger name {logger!r} (`proxy-config log <proxy>` lists them)")
        (every if logger == ALL_LOGGERS else named).append((logger, _level(value)))
    if not every and not named:
        raise LevelError("--level names no level")
    return every[-1:] + named
