"""mizzenctl imports only the module of the command it runs."""

from __future__ import annotations

import argparse

import pytest

from tests.harness.imports import modules_loaded_by
from tools.mizzenctl.cli import COMMAND_MODULES, ROOT_NAMES, build_parser, command_of


def root_names(parser: argparse.ArgumentParser) -> set[str]:
    (commands,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(commands.choices)


def test_every_root_command_is_found_in_the_table() -> None:
    """A command added to a module but not to COMMAND_MODULES would parse only through the
    whole tree (and `mizzenctl <it>` would fail as an unknown command)."""
    assert root_names(build_parser()) == ROOT_NAMES


@pytest.mark.parametrize("names", [names for _, _, names in COMMAND_MODULES])
def test_a_command_parses_with_its_module_alone(names: tuple[str, ...]) -> None:
    for name in names:
        assert root_names(build_parser(name)) == set(names)


@pytest.mark.parametrize("argv,command", [
    (["apply", "-f", "x.yaml"], "apply"),
    (["--log-level", "debug", "get", "vs"], "get"),
    (["--log-level=debug", "pc", "clusters", "p"], "pc"),
    (["x", "ca", "show"], "x"),
    (["--help"], None),
    (["-h", "apply"], None),
    (["completion", "bash"], None),
    (["no-such-command"], None),
    ([], None),
])
def test_the_command_is_the_first_word_not_the_roots_option(argv: list[str], command: str | None) -> None:
    assert command_of(argv) == command


def test_apply_does_not_import_the_other_commands_libraries() -> None:
    loaded = modules_loaded_by("from tools.mizzenctl.cli import build_parser\n"
                               "build_parser('apply').parse_args(['apply', '-f', 'x.yaml'])")
    assert "tools.mizzenctl.resources" in loaded
    for heavy in ("tools.mizzenctl.mesh_commands", "libs.runtime", "libs.analysis", "cryptography",
                  "tools.mizzenctl.proxy_config", "libs.inject"):
        assert heavy not in loaded, f"{heavy} is imported by `mizzenctl apply`"


def test_an_unknown_command_is_refused_with_every_command_listed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser(command_of(["aply"])).parse_args(["aply"])
    refused = capsys.readouterr().err
    assert "invalid choice: 'aply'" in refused
    assert "'apply'" in refused and "'proxy-status'" in refused and "'completion'" in refused
