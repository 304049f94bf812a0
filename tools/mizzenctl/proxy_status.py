"""`mizzenctl proxy-status [<proxy>]`: istioctl's sync table, from pilot's /debug/syncz.

Per proxy and xDS type (istioctl's rules, istioctl/pkg/writer/pilot/status.go):
SYNCED (the last response sent was ACKed), NOT SENT (nothing sent yet), STALE (sent, not
ACKed yet; "(Never Acknowledged)" if nothing ever was), and Mizzen's STALE (NACK) when the
proxy rejected the last version (`-v` prints Envoy's error).  LAST CONVERGENCE: seconds
from the config change to the proxy ACKing everything built from it, for its last sync.

With a proxy name: that proxy's types in detail; with `--admin host:port` of its Envoy,
pilot's view compared with Envoy's config_dump.

CLUSTER is the registry the proxy's workload is registered in, as pilot finds it
(`mesh-workloads` for the local mesh, `Kubernetes` for pods), where Istio shows the
cluster ID.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tools.mizzenctl import config_diff, contexts
from tools.mizzenctl.sources import SourceError, add_pilot_flags, envoy_config_dump, pilot_config, pilot_urls, syncz
from tools.mizzenctl.table import render

__all__ = ["HEADER", "add_parser", "nack_lines", "status_rows", "xds_status"]

Json = dict[str, Any]
HEADER = ("NAME", "CLUSTER", "CDS", "LDS", "EDS", "RDS", "ISTIOD", "VERSION", "LAST CONVERGENCE")
TYPES = ("CDS", "LDS", "EDS", "RDS")


def xds_status(state: Json | None) -> str:
    if not state or not state.get("sent"):
        return "NOT SENT"
    nack = state.get("last_nack")
    if nack and nack.get("version") == state["sent"] and state.get("acked") != state["sent"]:
        return "STALE (NACK)"
    if not state.get("awaiting_ack") and state.get("acked") == state["sent"]:
        return "SYNCED"
    if not state.get("acked"):
        return "STALE (Never Acknowledged)"
    return "STALE"


def _name(row: Json) -> str:
    return str(row.get("name") or row["proxy"])


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}s"


def _sorted(rows: list[Json]) -> list[Json]:
    return sorted(rows, key=lambda r: (r.get("cluster_id", ""), r.get("name", ""), r.get("proxy", "")))


def status_rows(rows: list[Json]) -> list[tuple[str, ...]]:
    return [(_name(r), r.get("cluster_id", ""), *(xds_status(r["types"].get(t)) for t in TYPES),
             r.get("pilot", ""), r.get("proxy_version", ""), seconds(r.get("convergence_s")))
            for r in _sorted(rows)]


def status_json(rows: list[Json]) -> list[Json]:
    return [{"name": _name(r), "proxy": r["proxy"], "cluster": r.get("cluster_id", ""),
             **{t: xds_status(r["types"].get(t)) for t in TYPES}, "istiod": r.get("pilot", ""),
             "version": r.get("proxy_version", ""), "last_convergence_s": r.get("convergence_s"),
             "nacks": {t: s["last_nack"] for t, s in r["types"].items() if xds_status(s) == "STALE (NACK)"}}
            for r in _sorted(rows)]


def warning_lines(rows: list[Json]) -> list[str]:
    """One line per translation warning: config pilot could not serve as written."""
    return [f"{_name(row)}: {warning}" for row in _sorted(rows) for warning in row.get("warnings", [])]


def nack_lines(rows: list[Json]) -> list[str]:
    """One line per rejected type: who rejected which version, and Envoy's reason."""
    lines = []
    for row in _sorted(rows):
        for kind in TYPES:
            state = row["types"].get(kind)
            if xds_status(state) == "STALE (NACK)":
                nack = (state or {})["last_nack"]
                lines.append(f"{_name(row)} {kind} rejected version {nack['version']} "
                             f"(nonce {nack['nonce']}): {nack['error']}")
    return lines


def detail_table(row: Json) -> str:
    """One proxy, type by type."""
    table = []
    for kind in TYPES:
        state = row["types"].get(kind) or {}
        table.append((kind, xds_status(state), state.get("sent") or "-", state.get("acked") or "-",
                      state.get("nonce") or "-", state.get("resources", 0), state.get("acked_at") or "-"))
    return render(("TYPE", "STATUS", "SENT", "ACKED", "NONCE", "RESOURCES", "LAST ACK"), table)


def select(rows: list[Json], proxy: str) -> list[Json]:
    """istioctl matches a substring of the proxy ID; exact names win."""
    exact = [r for r in rows if proxy in (r["proxy"], r.get("name"), r.get("name", "").rsplit(".", 1)[0])]
    return exact or [r for r in rows if proxy in _name(r)]


def _one(args: argparse.Namespace, urls: list[str], row: Json) -> int:
    if not args.admin:
        if args.output == "json":
            print(json.dumps({"status": status_json([row])[0], "types": row["types"]}, indent=2))
            return 0
        print(render(HEADER, status_rows([row])), end="")
        print()
        print(detail_table(row), end="")
        for line in nack_lines([row]):
            print(f"NACK: {line}")
        for line in warning_lines([row]):
            print(f"WARNING: {line}")
        print("\n(pass --admin <host:port> of the proxy's Envoy admin to compare with what Envoy holds)")
        return 0
    view = pilot_config(urls, row["proxy"], include_eds=True)
    envoy = envoy_config_dump(args.admin, include_eds=True)
    sent = {kind: (row["types"].get(kind) or {}).get("sent", "") for kind in TYPES}
    diffs = config_diff.compare(view.dump, envoy, sent)
    if args.output == "json":
        print(json.dumps({"status": status_json([row])[0], "comparison": [d.as_dict() for d in diffs]}, indent=2))
    else:
        print(config_diff.render(diffs), end="")
    return 0


def run(args: argparse.Namespace) -> int:
    urls = pilot_urls(args)
    try:
        rows = syncz(urls, warnings=args.verbose or bool(args.proxy))
        if args.proxy:
            chosen = select(rows, args.proxy)
            if len(chosen) != 1:
                found = ", ".join(_name(r) for r in chosen) or "none"
                print(f"error: {args.proxy!r} must name one connected proxy (matches: {found})", file=sys.stderr)
                return 1
            return _one(args, urls, chosen[0])
    except SourceError as exc:
        print(f"error: {exc}; {contexts.explain(args)}", file=sys.stderr)
        return 1
    if args.output == "json":
        print(json.dumps(status_json(rows), indent=2))
        return 0
    print(render(HEADER, status_rows(rows)), end="")
    nacks = nack_lines(rows)
    if args.verbose:
        details = [f"NACK: {line}" for line in nacks] + [f"WARNING: {line}" for line in warning_lines(rows)]
        if details:
            print()
            print("\n".join(details))
    elif nacks:
        print(f"\n{len(nacks)} rejected by Envoy (NACK); -v prints the errors and translation warnings",
              file=sys.stderr)
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("proxy-status", aliases=["ps"],
                                 help="sync status of every proxy connected to pilot (istioctl proxy-status)")
    parser.add_argument("proxy", nargs="?", help="one proxy: <pod>.<namespace>, a pod name, or a full node id")
    parser.add_argument("--admin", metavar="HOST:PORT",
                        help="with a proxy: compare pilot's view with this Envoy admin's /config_dump")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print the errors of rejected (NACKed) config and pilot's translation warnings")
    add_pilot_flags(parser)
    parser.set_defaults(run=run)
