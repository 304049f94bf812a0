"""Settings as frozen dataclasses, read from flags with environment fallbacks.

Each field of a settings dataclass is one knob, declared with `knob()`.  A knob named
`nats_url` is set by `--nats-url`, else by `MIZZEN_NATS_URL` in the environment passed
in, else by its default.  A knob may also answer to other names in the environment
(`aliases`, e.g. the variable Istio's injector writes for the same setting), read in order
when its own is unset.  The environment is a parameter, never read at import time, so
tests pass a dict.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from libs.runtime._errors import SettingsError

T = TypeVar("T")

ENV_PREFIX = "MIZZEN_"


def knob(default: Any, help: str, *, env: str | None = None, aliases: tuple[str, ...] = ()) -> Any:
    """Declare one setting: its default, a help text that names its unit, optionally an
    environment variable other than `MIZZEN_<NAME>`, and other variables read when that
    one is unset (`aliases`, first found wins)."""
    if isinstance(default, list | dict | set):
        raise TypeError("knob defaults must be immutable; use a tuple")
    return dataclasses.field(default=default, metadata={"help": help, "env": env, "aliases": aliases})


def env_name(field: dataclasses.Field[Any]) -> str:
    return field.metadata.get("env") or ENV_PREFIX + field.name.upper()


def env_names(field: dataclasses.Field[Any]) -> tuple[str, ...]:
    """Every environment variable that sets `field`, in the order they are read."""
    return (env_name(field), *field.metadata.get("aliases", ()))


def _base_type(hint: Any) -> tuple[Any, bool]:
    """Return (type, optional) for a field's annotation."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


def _parse(name: str, source: str, hint: Any, raw: str) -> Any:
    typ, optional = _base_type(hint)
    if optional and raw == "":
        return None
    try:
        if typ is bool:
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"{raw!r} is not a boolean (use true/false)")
        if typ is int:
            return int(raw)
        if typ is float:
            return float(raw)
        if typ is Path:
            return Path(raw)
        if typ is str:
            return raw
        if typing.get_origin(typ) is tuple:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise SettingsError(name, source, str(exc)) from exc
    raise SettingsError(name, source, f"unsupported setting type {typ!r}")


def load_settings(
    cls: type[T],
    argv: Sequence[str] | None,
    environ: Mapping[str, str],
    *,
    prog: str,
) -> T:
    """Build `cls` from command-line flags, falling back to `environ`, then defaults."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    parser = argparse.ArgumentParser(prog=prog, description=(cls.__doc__ or "").strip())
    for field in dataclasses.fields(cls):
        flag = "--" + field.name.replace("_", "-")
        sources = " or ".join(env_names(field))
        # argparse expands %-formats in help: a "20%" in a setting's text would crash --help.
        help_text = f"{field.metadata.get('help', '')} [env {sources}; default {field.default!r}]".replace("%", "%%")
        typ, _ = _base_type(hints[field.name])
        if typ is bool:
            parser.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction,
                                default=None, help=help_text)
        else:
            parser.add_argument(flag, dest=field.name, default=None, metavar=field.name.upper(),
                                help=help_text)
    parsed = vars(parser.parse_args(list(argv) if argv is not None else []))
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        flag_value = parsed[field.name]
        if isinstance(flag_value, bool):
            values[field.name] = flag_value
        elif flag_value is not None:
            values[field.name] = _parse(field.name, "--" + field.name.replace("_", "-"), hint, flag_value)
        elif found := next((name for name in env_names(field) if name in environ), None):
            values[field.name] = _parse(field.name, found, hint, environ[found])
    return cls(**values)
