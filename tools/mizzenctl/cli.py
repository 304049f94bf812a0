"""mizzenctl's commands.  Each subcommand lives in its own module; this file only wires them,
and imports a command's module only when the call needs it."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from tools.mizzenctl import help_examples

# Each module that defines commands, the function that adds their parsers, and the names
# (aliases too) it adds under the root.  A call imports only the module of the command it
# runs: between them the modules bring httpx, the config schema, cryptography and the local
# mesh's runtime, and importing them all cost every `mizzenctl apply` about a second more.
# Help for the root, completion and an unknown word build the whole tree.
COMMAND_MODULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("mesh_commands", "add_parsers", ("up", "dashboard", "down", "status")),
    ("contexts", "add_parser", ("context",)),
    ("validate", "add_parser", ("validate",)),
    ("analyze", "add_parser", ("analyze",)),
    ("kube_inject", "add_parser", ("kube-inject",)),
    ("resources", "add_parsers", ("apply", "delete", "get")),
    ("proxy_status", "add_parser", ("proxy-status", "ps")),
    ("proxy_config", "add_parser", ("proxy-config", "pc")),
    ("version", "add_parser", ("version",)),
    ("bug_report", "add_parser", ("bug-report",)),
)
# `mizzenctl x <command>` (istioctl x): these modules add theirs under "x".
EXPERIMENTAL_MODULES = ("authz_check", "ca", "describe")
EXPERIMENTAL_NAMES = ("x", "experimental")
# Every word that names a root command.
ROOT_NAMES = frozenset({"demo", "completion", *EXPERIMENTAL_NAMES,
                        *(name for _, _, names in COMMAND_MODULES for name in names)})


def _demo(args: argparse.Namespace) -> int:
    from tools.localmesh.demo import run_demo

    return run_demo(Path(args.state_dir) / "demo")


def _add(commands: argparse._SubParsersAction, module: str, function: str) -> None:
    getattr(importlib.import_module(f"tools.mizzenctl.{module}"), function)(commands)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command tree, or with `command` (a root command's name) the part of it that
    parses that command: its module's commands only."""
    parser = argparse.ArgumentParser(prog="mizzenctl", description="Mizzen's command line")
    parser.add_argument("--log-level", default="warning", help="log level of mizzenctl itself")
    commands = parser.add_subparsers(dest="command", required=True)
    everything = command is None
    if everything or command == "demo":
        demo = commands.add_parser("demo", help="run the first demo in the foreground (Ctrl-C stops it)")
        demo.add_argument("--state-dir", default=".mizzen", help="where logs and data go (default .mizzen/)")
        demo.set_defaults(run=_demo)
    for module, function, names in COMMAND_MODULES:
        if everything or command in names:
            _add(commands, module, function)
    if everything or command in EXPERIMENTAL_NAMES:
        experimental = commands.add_parser("x", aliases=["experimental"], help="experimental commands (istioctl x)")
        experimental_commands = experimental.add_subparsers(dest="experimental_command", required=True)
        for module in EXPERIMENTAL_MODULES:
            _add(experimental_commands, module, "add_parser")
    if everything:
        from tools.mizzenctl import completion

        completion.add_parser(commands, parser)
    help_examples.decorate(parser)
    return parser


def command_of(argv: Sequence[str]) -> str | None:
    """The root command `argv` runs, when the part of the tree that parses it is enough: not
    for the root's help, completion (which lists every command) or a word no module owns."""
    words = iter(argv)
    for word in words:
        if word in ("-h", "--help"):
            return None
        if word == "--log-level":
            next(words, None)
        elif not word.startswith("-"):
            return word if word in ROOT_NAMES and word != "completion" else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    words = list(argv if argv is not None else sys.argv[1:])
    args = build_parser(command_of(words)).parse_args(words)
    if args.command in ("demo", "up"):
        # Only the long-running commands log; importing the runtime costs a quarter second.
        from libs.runtime import configure_logging

        configure_logging(args.log_level, json=False, service="mizzenctl")
    return int(args.run(args))
