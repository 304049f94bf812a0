from __future__ import annotations

import importlib
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


@dataclass(frozen=True)
class WithAliases:
    probers: str = knob("", "JSON", aliases=("ISTIO_KUBE_APP_PROBERS", "OLDER_NAME"))


def test_aliases_are_read_in_order_when_the_own_variable_is_unset() -> None:
    assert load_settings(WithAliases, [], {"OLDER_NAME": "c"}, prog="x").probers == "c"
    assert load_settings(WithAliases, [], {"OLDER_NAME": "c", "ISTIO_KUBE_APP_PROBERS": "b"}, prog="x").probers == "b"
    both = {"ISTIO_KUBE_APP_PROBERS": "b", "MIZZEN_PROBERS": "a"}
    assert load_settings(WithAliases, [], both, prog="x").probers == "a"
    assert load_settings(WithAliases, ["--probers", "flag"], both, prog="x").probers == "flag"


def test_a_bad_alias_value_names_the_variable_it_came_from() -> None:
    @dataclass(frozen=True)
    class Port:
        port: int = knob(1, "port", aliases=("ISTIO_PORT",))

    with pytest.raises(SettingsError, match="setting port \\(from ISTIO_PORT\\)"):
        load_settings(Port, [], {"ISTIO_PORT": "eighty"}, prog="x")


def test_help_lists_every_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        load_settings(WithAliases, ["--help"], {}, prog="x")
    assert "MIZZEN_PROBERS or ISTIO_KUBE_APP_PROBERS or OLDER_NAME" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("module", ["agent", "citadel", "galley", "pilot", "policy", "sidecar_injector", "telemetry"])
def test_every_service_prints_its_help(module: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A "%" in a setting's help text once made argparse crash on `--help` (pilot, citadel)."""
    settings = importlib.import_module(f"services.{module}.settings")
    cls = next(v for k, v in vars(settings).items() if k.endswith("Settings") and v.__module__ == settings.__name__)
    with pytest.raises(SystemExit) as exited:
        load_settings(cls, ["--help"], {}, prog=f"python -m services.{module}")
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: python -m services.{module}")
