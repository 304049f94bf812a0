"""`mizzenctl analyze`: Istio's analyzers (`libs.analysis`) over the live mesh, over files
before they are applied, or over files overlaid on the live mesh, printed as `istioctl
analyze` prints them.

Exit codes are istioctl's: 0 when nothing reached `--failure-threshold` (Error by
default), 79 when something did, 1 when the inputs could not be read.
"""

from __future__ import annotations

import argparse
import json
import sys

import yaml

from libs.analysis import ANALYZERS, Level, Message, about, analyze
from tools.mizzenctl.analyze_inputs import AnalyzeInputError, gather
from tools.mizzenctl.galley_client import GalleyUnreachable, add_connection_flags
from tools.mizzenctl.sources import add_pilot_flags

FOUND_ISSUES = 79
DOCS = "https://istio.io/latest/docs/reference/config/analysis"
EXAMPLES = """examples:
  mizzenctl analyze                                    # the live mesh, namespace default
  mizzenctl analyze -A                                 # every namespace
  mizzenctl analyze -f reviews.yaml                    # reviews.yaml as if applied to the live mesh
  mizzenctl analyze --use-mesh=false -f samples/bookinfo/networking/   # files alone
"""


def _bool(value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false", "1", "0", "yes", "no"):
        raise argparse.ArgumentTypeError(f"{value!r} is not true or false")
    return lowered in ("true", "1", "yes")


def _level(value: str) -> Level:
    try:
        return Level.parse(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _shown(messages: list[Message], args: argparse.Namespace, from_files: set[str]) -> list[Message]:
    """The namespace's messages (all of them with -A), and every message about a file's resource."""
    chosen = about(messages, None if args.all_namespaces else [args.namespace], level=args.output_threshold)
    chosen += [m for m in about(messages, refs=from_files, level=args.output_threshold) if m not in chosen]
    return sorted(chosen, key=Message.sort_key)


def _target(args: argparse.Namespace) -> str:
    return "all namespaces" if args.all_namespaces else f"namespace: {args.namespace}"


def run(args: argparse.Namespace) -> int:
    if args.list_analyzers:
        for analyzer in ANALYZERS:
            print(f"* {analyzer.name}:\n    {analyzer.description}")
        return 0
    args.files = [*args.filename, *args.paths]
    namespace = args.namespace or "default"
    args.namespace = namespace
    try:
        gathered = gather(args, namespace)
    except (AnalyzeInputError, GalleyUnreachable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for note in gathered.notes:
        print(f"warning: {note}", file=sys.stderr)
    messages = _shown(analyze(gathered.inputs), args, gathered.from_files)
    if args.output in ("json", "yaml"):
        bodies = [m.to_dict() for m in messages]
        print(json.dumps(bodies, indent=2) if args.output == "json" else yaml.safe_dump(bodies, sort_keys=False),
              end="\n" if args.output == "json" else "")
    elif not messages:
        print(f"\u2714 No validation issues found when analyzing {_target(args)}.", file=sys.stderr)
    else:
        for message in messages:
            print(message)
    if any(m.level >= args.failure_threshold for m in messages):
        if args.output == "log":
            print(f"Error: Analyzers found issues when analyzing {_target(args)}.\nSee {DOCS} for more information "
                  "about causes and resolutions.", file=sys.stderr)
        return FOUND_ISSUES
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "analyze", help="find problems in Istio config: the live mesh's, files', or files' over the live mesh's",
        description="Istio's analyzers (istioctl analyze), with Istio's message codes.", epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", metavar="FILE", help="files or directories to analyse (as -f)")
    parser.add_argument("-f", "--filename", action="append", default=[], help="file, directory or - (stdin)")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", help="namespace to report on, and of resources without one "
                                                 "(default: default)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="report on every namespace")
    parser.add_argument("--use-mesh", "--use-kube", dest="use_mesh", type=_bool, default=True, metavar="BOOL",
                        help="analyse over the running mesh's config and registry (default true; false: the files "
                             "alone, as --use-mesh=false)")
    parser.add_argument("-o", "--output", choices=("log", "json", "yaml"), default="log")
    parser.add_argument("--failure-threshold", type=_level, default=Level.ERROR, metavar="LEVEL",
                        help="the level (Info, Warning, Error) from which the exit code is 79 (default Error)")
    parser.add_argument("--output-threshold", type=_level, default=Level.INFO, metavar="LEVEL",
                        help="the lowest level shown (default Info)")
    parser.add_argument("-L", "--list-analyzers", action="store_true", help="list the analyzers and exit")
    add_connection_flags(parser)
    add_pilot_flags(parser)
    parser.set_defaults(run=run)
