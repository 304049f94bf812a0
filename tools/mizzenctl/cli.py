"""mizzenctl's commands.  Each subcommand lives in its own module; this file only wires them."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tools.mizzenctl import (
    analyze,
    authz_check,
    bug_report,
    ca,
    completion,
    contexts,
    describe,
    help_examples,
    kube_inject,
    mesh_commands,
    proxy_config,
    proxy_status,
    resources,
    validate,
    version,
)


def _demo(args: argparse.Namespace) -> int:
    from tools.localmesh.demo import run_demo

    return run_demo(Path(args.state_dir) / "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mizzenctl", description="Mizzen's command line")
    parser.add_argument("--log-level", default="warning", help="log level of mizzenctl itself")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the first demo in the foreground (Ctrl-C stops it)")
    demo.add_argument("--state-dir", default=".mizzen", help="where logs and data go (default .mizzen/)")
    demo.set_defaults(run=_demo)
    mesh_commands.add_parsers(commands)
    contexts.add_parser(commands)
    validate.add_parser(commands)
    analyze.add_parser(commands)
    kube_inject.add_parser(commands)
    resources.add_parsers(commands)
    proxy_status.add_parser(commands)
    proxy_config.add_parser(commands)
    version.add_parser(commands)
    bug_report.add_parser(commands)
    experimental = commands.add_parser("x", aliases=["experimental"], help="experimental commands (istioctl x)")
    experimental_commands = experimental.add_subparsers(dest="experimental_command", required=True)
    authz_check.add_parser(experimental_commands)
    ca.add_parser(experimental_commands)
    describe.add_parser(experimental_commands)
    completion.add_parser(commands, parser)
    help_examples.decorate(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv if argv is not None else sys.argv[1:])
    if args.command in ("demo", "up"):
        # Only the long-running commands log; importing the runtime costs a quarter second.
        from libs.runtime import configure_logging

        configure_logging(args.log_level, json=False, service="mizzenctl")
    return int(args.run(args))
