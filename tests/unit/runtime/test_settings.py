from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from libs.runtime import SettingsError, knob, load_settings


@dataclass(frozen=True)
class Example:
    """An example service."""

    nats_url: str = knob("nats://127.0.0.1:4222", "NATS URL")
    port: int = knob(15010, "port")
    quiet_s: float = knob(0.1, "seconds")
    verbose: bool = knob(False, "talk more")
    state_dir: Path = knob(Path(".mizzen"), "state")
    labels: tuple[str, ...] = knob((), "k=v list")
    json_logs: bool | None = knob(None, "json or not")
    token: str = knob("", "token", env="CUSTOM_TOKEN")


def test_defaults() -> None:
    assert load_settings(Example, [], {}, prog="x") == Example()


def test_flag_wins_over_environment() -> None:
    settings = load_settings(Example, ["--port", "1"], {"MIZZEN_PORT": "2"}, prog="x")
    assert settings.port == 1


def test_environment_fallback_and_types() -> None:
    settings = load_settings(Example, [], {
        "MIZZEN_PORT": "2", "MIZZEN_QUIET_S": "0.5", "MIZZEN_VERBOSE": "yes", "MIZZEN_STATE_DIR": "/tmp/s",
        "MIZZEN_LABELS": "app=a, version=v1", "MIZZEN_JSON_LOGS": "false", "CUSTOM_TOKEN": "t",
    }, prog="x")
    assert settings == Example(port=2, quiet_s=0.5, verbose=True, state_dir=Path("/tmp/s"),
                               labels=("app=a", "version=v1"), json_logs=False, token="t")


def test_boolean_flags() -> None:
    assert load_settings(Example, ["--verbose"], {}, prog="x").verbose is True
    assert load_settings(Example, ["--no-verbose"], {"MIZZEN_VERBOSE": "1"}, prog="x").verbose is False


def test_bad_environment_value_names_the_setting() -> None:
    with pytest.raises(SettingsError, match="setting port \\(from MIZZEN_PORT\\)"):
        load_settings(Example, [], {"MIZZEN_PORT": "eighty"}, prog="x")
    with pytest.raises(SettingsError, match="not a boolean"):
        load_settings(Example, [], {"MIZZEN_VERBOSE": "maybe"}, prog="x")


def test_mutable_defaults_are_refused() -> None:
    with pytest.raises(TypeError):
        knob([], "a list")
