"""`mizzenctl validate -f FILE|DIR|-`: offline validation, the webhook's rules and words."""

from __future__ import annotations

import argparse
import sys

from libs.config import parse_text
from libs.config.report import report
from tools.mizzenctl.inputs import InputError, iter_inputs


def run(args: argparse.Namespace) -> int:
    valid = invalid = unsupported = 0
    try:
        for source, data in iter_inputs(args.filename):
            summary = report(parse_text(data, source, default_namespace=args.namespace))
            for line in summary.errors:
                print(line, file=sys.stderr)
            for line in summary.warnings:
                print(f"warning: {line}", file=sys.stderr)
            if args.verbose:
                for line in summary.unsupported:
                    print(f"skipped: {line}", file=sys.stderr)
            valid += len(summary.valid)
            invalid += len(summary.errors)
            unsupported += len(summary.unsupported)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{valid} valid resource(s), {invalid} error(s), {unsupported} of unsupported kinds skipped")
    return 0 if invalid == 0 else 1


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("validate", help="validate Istio config offline (exit 1 on any error)")
    parser.add_argument("-f", "--filename", action="append", required=True, help="file, directory or - (stdin)")
    parser.add_argument("-n", "--namespace", default="default", help="namespace for resources without one")
    parser.add_argument("-v", "--verbose", action="store_true", help="also list resources of unsupported kinds")
    parser.set_defaults(run=run)
