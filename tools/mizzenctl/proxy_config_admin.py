"""`mizzenctl proxy-config secret|bootstrap|log|all <proxy>`: what only the proxy's Envoy
knows (pilot sends neither secrets nor the bootstrap), read from its admin interface as
istioctl reads it through a port-forward.  The admin address is the one the proxy's agent
advertises, checked (envoy_admin.locate), or `--admin host:port`.

- secret: the certificates Envoy holds (SDS `default` and `ROOTCA`, gateway credentials),
  istioctl's table plus each certificate's SPIFFE ID; `-o json` as istioctl's SecretItems.
- bootstrap: Envoy's BootstrapConfigDump as JSON (istioctl's default), `-o short` the
  versions summary.
- log: the logger levels; `--level` changes them, `-r` resets them to the agent's default.
- all: every table istioctl's `all` prints, in its order; `-o json` the whole config dump.
Everything printed as JSON has its secrets redacted (redact.py), whatever Envoy shows.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tools.mizzenctl import config_dump, contexts, envoy_admin, envoy_logging, proxy_secrets
from tools.mizzenctl.redact import redact_json
from tools.mizzenctl.sources import SourceError, add_pilot_flags, admin_url, envoy_clusters, get_json
from tools.mizzenctl.table import render

__all__ = ["ADMIN_KINDS", "add_parsers", "bootstrap_summary", "envoy_version"]

Json = dict[str, Any]
ADMIN_KINDS = ("secret", "bootstrap", "log", "all")


def full_dump(admin: str, *, include_eds: bool = False) -> Json:
    """Envoy's whole `/config_dump` (secrets and bootstrap included)."""
    params = {"include_eds": "true"} if include_eds else None
    dump: Json = get_json(admin_url(admin), "/config_dump", params, what="Envoy admin")
    return dump


def envoy_version(node: Json) -> str:
    """istioctl's `1.18.3/Clean/RELEASE/BoringSSL`, from a node's user_agent_build_version."""
    build = node.get("user_agent_build_version") or {}
    number = build.get("version") or {}
    if not number:
        return ""
    meta = build.get("metadata") or {}
    parts = [f"{number.get('major_number', 0)}.{number.get('minor_number', 0)}.{number.get('patch', 0)}"]
    parts += [str(meta[key]) for key in ("revision.status", "build.type", "ssl.version") if meta.get(key)]
    return "/".join(parts)


def bootstrap_summary(dump: Json) -> str:
    """istioctl's `proxy-config bootstrap -o short` (tabwriter, padding 1)."""
    node = config_dump.section(dump, "BootstrapConfigDump").get("bootstrap", {}).get("node", {})
    lines = []
    mizzen = str((node.get("metadata") or {}).get("MIZZEN_VERSION", ""))
    if mizzen:
        lines.append(("Mizzen Version:", mizzen))
    if envoy := envoy_version(node):
        lines.append(("Envoy Version:", envoy))
    width = max((len(label) for label, _ in lines), default=0)
    return "".join(f"{label.ljust(width)} {value}\n" for label, value in lines)


def _secret(args: argparse.Namespace, admin: str, name: str) -> int:
    items = proxy_secrets.items(full_dump(admin))
    if args.output == "json":
        print(json.dumps([item.as_dict() for item in items], indent=1))
    elif not items:
        print("No active or warming secrets found.")
    else:
        print(render(proxy_secrets.HEADER, proxy_secrets.rows(items)), end="")
    return 0


def _bootstrap(args: argparse.Namespace, admin: str, name: str) -> int:
    dump = full_dump(admin)
    if args.output == "short":
        print(bootstrap_summary(dump), end="")
    else:
        print(json.dumps(redact_json(config_dump.section(dump, "BootstrapConfigDump")), indent=2))
    return 0


def _log(args: argparse.Namespace, admin: str, name: str) -> int:
    if args.reset and args.level:
        print("error: --reset and --level are exclusive", file=sys.stderr)
        return 2
    listing = envoy_admin.logging_levels(admin)
    if args.reset:
        listing = envoy_admin.set_logging(admin, [(envoy_logging.ALL_LOGGERS, envoy_logging.DEFAULT_LEVEL)])
    elif args.level:
        try:
            changes = envoy_logging.parse_levels(args.level, set(envoy_logging.parse_listing(listing)))
        except envoy_logging.LevelError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        listing = envoy_admin.set_logging(admin, changes)
    if args.output == "json":
        print(json.dumps(envoy_logging.parse_listing(listing), indent=2))
    else:
        print(f"{name}:\n{listing}", end="" if listing.endswith("\n") else "\n")
    return 0


def _all(args: argparse.Namespace, admin: str, name: str) -> int:
    from tools.mizzenctl import proxy_config

    dump = full_dump(admin, include_eds=True)
    if args.output == "json":
        print(json.dumps(redact_json(dump), indent=2))
        return 0
    filters = argparse.Namespace(fqdn="", port=0, subset="", direction="", address="", name="", cluster="",
                                 status="")
    sections = [bootstrap_summary(dump)]
    sections += [proxy_config.table(kind, dump, {}, filters) for kind in ("clusters", "listeners", "routes")]
    items = proxy_secrets.items(dump)
    sections.append(render(proxy_secrets.HEADER, proxy_secrets.rows(items)) if items
                    else "No active or warming secrets found.\n")
    sections.append(proxy_config.table("endpoints", dump, {}, filters, envoy_clusters(admin)))
    print("\n".join(sections), end="")
    return 0


_RUN = {"secret": _secret, "bootstrap": _bootstrap, "log": _log, "all": _all}


def run(args: argparse.Namespace) -> int:
    try:
        admin, name = envoy_admin.locate(args, args.proxy)
        return _RUN[args.kind](args, admin, name)
    except SourceError as exc:
        print(f"error: {exc}; {contexts.explain(args)}", file=sys.stderr)
        return 1


_HELP = {
    "secret": "the certificates the proxy's Envoy holds: chain, roots, SPIFFE IDs, serials, validity",
    "bootstrap": "the proxy's Envoy bootstrap (JSON; -o short for the versions)",
    "log": "the proxy's Envoy logger levels; --level or -r to change them",
    "all": "every table at once (bootstrap, clusters, listeners, routes, secrets, endpoints)",
}
_DESCRIPTION = {
    "secret": "The certificates the proxy's Envoy holds (its workload certificate chain, the roots it trusts, "
              "gateway credentials), read from Envoy's admin: each one's SPIFFE ID, serial number and validity.",
    "bootstrap": "The bootstrap the proxy's Envoy started with, read from Envoy's admin (-o short: the Mizzen and "
                 "Envoy versions).",
    "log": "The levels of the proxy's Envoy loggers, read and changed through Envoy's admin /logging.",
    "all": "Everything istioctl's proxy-config all shows, read from the proxy's Envoy admin; -o json prints the "
           "whole config dump, secrets redacted.",
}
_OUTPUTS = {"secret": ("table", "json"), "bootstrap": ("json", "short"), "log": ("text", "json"),
            "all": ("table", "json")}


def add_parsers(kinds: argparse._SubParsersAction) -> None:
    """The admin-only kinds under `proxy-config`'s subcommands."""
    for kind in ADMIN_KINDS:
        sub = kinds.add_parser(kind, help=_HELP[kind], description=_DESCRIPTION[kind])
        sub.add_argument("proxy", nargs="?", help="<pod>.<namespace>, a pod name, or a full node id")
        sub.add_argument("--admin", metavar="HOST:PORT",
                         help="the proxy's Envoy admin (default: the address its agent advertises to pilot)")
        sub.add_argument("-o", "--output", choices=_OUTPUTS[kind], default=_OUTPUTS[kind][0])
        if kind == "log":
            sub.add_argument("--level", default="",
                             help="<level> for every logger, or <logger>:<level>[,<logger>:<level>...]; levels: "
                                  "trace, debug, info, warning, error, critical, off")
            sub.add_argument("-r", "--reset", action="store_true",
                             help=f"reset every logger to {envoy_logging.DEFAULT_LEVEL}, the agent's default")
        add_pilot_flags(sub)
        sub.set_defaults(run=run)
