"""`mizzenctl apply -f`, `delete -f` and `get KIND`: config through galley's API."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import yaml

from libs.config import parse_text
from libs.config.report import report
from tools.mizzenctl import dry_run
from tools.mizzenctl.galley_client import GalleyUnreachable, add_connection_flags, request
from tools.mizzenctl.inputs import InputError, iter_inputs
from tools.mizzenctl.sources import add_pilot_flags


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def unsupported_kinds(inputs: list[tuple[str, bytes]], namespace: str) -> list[str]:
    """Every resource of a kind Mizzen does not serve, named with its file (validate's rules)."""
    return [line for source, data in inputs
            for line in report(parse_text(data, source, default_namespace=namespace)).unsupported]


def apply(args: argparse.Namespace) -> int:
    """kubectl's apply through galley.  A resource of a kind Mizzen does not serve is an
    error, found before anything is stored (applying the rest would leave half of what the
    file means in force); `--skip-unsupported` applies the rest and lists what it skipped.
    `--dry-run` stores nothing: galley validates and analyses, and pilot shows what the
    valid resources would change in each proxy's config (`dry_run`)."""
    failed = False
    try:
        inputs = list(iter_inputs(args.filename))
        refused = [] if args.skip_unsupported else unsupported_kinds(inputs, args.namespace)
        if refused:
            for line in refused:
                print(f"error: {line}", file=sys.stderr)
            return _fail(f"{len(refused)} resource(s) of kinds Mizzen does not serve; nothing was applied "
                         "(--skip-unsupported applies the rest)")
        for source, data in inputs:
            response = request(args, "POST", "/apis/v1/apply", content=data,
                               params={"namespace": args.namespace, "dryRun": str(args.dry_run).lower()},
                               headers={"content-type": "application/yaml"})
            if response.status_code not in (200, 422):
                return _fail(f"{source}: galley answered {response.status_code}: {response.text.strip()}")
            body = response.json()
            for outcome in body["applied"]:
                print(f"{outcome['resource']} {outcome['result']}")
            if args.dry_run:
                for resource in body["valid"]:
                    print(f"{resource} valid (dry run)")
            for line in body["errors"]:
                print(line.replace("request", source, 1) if line.startswith("request") else line, file=sys.stderr)
            for line in body["warnings"]:
                print(f"warning: {line}", file=sys.stderr)
            for line in body["unsupported"]:
                named = line.replace("request", source, 1) if line.startswith("request") else line
                print(f"{'skipped' if args.skip_unsupported else 'error'}: {named}", file=sys.stderr)
            failed |= bool(body["errors"]) or (bool(body["unsupported"]) and not args.skip_unsupported)
        if args.dry_run:
            # What the valid resources would change in each proxy's config, as an apply
            # would store them (each document on its own, the invalid ones refused).
            failed |= not _shown(*dry_run.show(args, inputs))
    except (InputError, GalleyUnreachable) as exc:
        return _fail(str(exc))
    return 1 if failed else 0


def _shown(out: list[str], err: list[str], shown: bool) -> bool:
    """Print a dry run's lines; whether it could be shown."""
    for line in out:
        print(line)
    for line in err:
        print(line, file=sys.stderr)
    return shown


def delete(args: argparse.Namespace) -> int:
    """`--dry-run` deletes nothing: galley says what it would delete, and pilot what that
    would change in each proxy's config (`dry_run`)."""
    failed = False
    suffix = " (dry run)" if args.dry_run else ""
    try:
        inputs = list(iter_inputs(args.filename))
        for _source, data in inputs:
            response = request(args, "POST", "/apis/v1/delete", content=data,
                               params={"namespace": args.namespace, "dryRun": str(args.dry_run).lower()})
            if response.status_code not in (200, 404, 422):
                return _fail(f"galley answered {response.status_code}: {response.text.strip()}")
            body = response.json()
            for name in body["deleted"]:
                print(f"{name} deleted{suffix}")
            for name in body["notFound"]:
                print(f"error: {name} not found", file=sys.stderr)
            for line in body["errors"]:
                print(line, file=sys.stderr)
            failed |= bool(body["notFound"] or body["errors"])
        if args.dry_run:
            failed |= not _shown(*dry_run.show_delete(args, inputs))
    except (InputError, GalleyUnreachable) as exc:
        return _fail(str(exc))
    return 1 if failed else 0


def _summary(item: dict[str, Any]) -> str:
    spec = item.get("spec", {})
    for field in ("hosts", "host", "servers"):
        if field in spec:
            value = spec[field]
            if field == "servers":
                return ",".join(str(s.get("port", {}).get("number")) for s in value)
            return ",".join(value) if isinstance(value, list) else str(value)
    return ""


# The shortNames of Istio's CRDs, as kubectl knows them.
SHORT_NAMES = {
    "vs": "VirtualService", "dr": "DestinationRule", "gw": "Gateway", "se": "ServiceEntry",
    "we": "WorkloadEntry", "wg": "WorkloadGroup", "pa": "PeerAuthentication", "ap": "AuthorizationPolicy",
    "ra": "RequestAuthentication",
}


def get(args: argparse.Namespace) -> int:
    params = {"kind": SHORT_NAMES.get(args.kind.lower(), args.kind)}
    if not args.all_namespaces:
        params["namespace"] = args.namespace
    if args.name:
        params["name"] = args.name
    try:
        response = request(args, "GET", "/apis/v1/resources", params=params)
    except GalleyUnreachable as exc:
        return _fail(str(exc))
    if response.status_code != 200:
        return _fail(response.json().get("detail", response.text))
    body = response.json()
    items = body["items"]
    if args.output == "yaml":
        documents = items if args.name else [{"apiVersion": "v1", "kind": "List", "items": items}]
        print(yaml.safe_dump_all(documents, sort_keys=False), end="")
        return 0
    if args.output == "json":
        print(json.dumps(items if not args.name else items[0] if items else {}, indent=2))
        return 0
    if not items:
        print(f"No {body['kind']} resources found.", file=sys.stderr)
        return 0 if not args.name else 1
    rows = [("NAMESPACE", "NAME", "HOSTS/PORTS")] + [
        (i["metadata"]["namespace"], i["metadata"]["name"], _summary(i)) for i in items]
    widths = [max(len(r[c]) for r in rows) for c in range(3)]
    for row in rows:
        print("   ".join(cell.ljust(widths[c]) for c, cell in enumerate(row)).rstrip())
    return 0


def add_parsers(commands: argparse._SubParsersAction) -> None:
    for name, func, verb in (("apply", apply, "create or update"), ("delete", delete, "delete")):
        parser = commands.add_parser(name, help=f"{verb} config from files through galley")
        parser.add_argument("-f", "--filename", action="append", required=True, help="file, directory or -")
        parser.add_argument("-n", "--namespace", default="default", help="namespace for resources without one")
        if name == "apply":
            parser.add_argument("--dry-run", action="store_true",
                                help="store nothing: validate, analyse, and show per proxy a diff of the Envoy "
                                     "config (clusters, endpoints, listeners, routes) pilot would send it")
        else:
            parser.add_argument("--dry-run", action="store_true",
                                help="delete nothing: say what would be deleted, and show per proxy a diff of the "
                                     "Envoy config pilot would send it afterwards")
        if name == "apply":
            parser.add_argument("--skip-unsupported", action="store_true",
                                help="apply what Mizzen serves and list the resources of other kinds (EnvoyFilter, "
                                     "...) as skipped, instead of refusing the whole apply")
        add_connection_flags(parser)
        add_pilot_flags(parser)
        parser.set_defaults(run=func)
    parser = commands.add_parser("get", help="list config of one kind (e.g. virtualservices)")
    parser.add_argument("kind")
    parser.add_argument("name", nargs="?")
    parser.add_argument("-n", "--namespace", default="default")
    parser.add_argument("-A", "--all-namespaces", action="store_true")
    parser.add_argument("-o", "--output", choices=("table", "yaml", "json"), default="table")
    add_connection_flags(parser)
    parser.set_defaults(run=get)
