"""`mizzenctl proxy-config clusters|listeners|routes|endpoints <proxy>`: one proxy's Envoy
configuration in istioctl's tables, or raw with `-o json`.  (`secret`, `bootstrap`, `log`
and `all`, which only Envoy's admin can answer, live in proxy_config_admin.)

Read from pilot's view of what it sent the proxy (`/debug/config_dump`, the default), or
with `--admin host:port` from the proxy's Envoy itself, which is the truth: static
resources from the bootstrap included, endpoint health and outlier ejections as Envoy
sees them.  The VIRTUAL SERVICE and DESTINATION RULE columns come from Istio's
`istio.config` metadata when resources carry it, else (pilot source) from pilot's
`/debug/config_origins`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tools.mizzenctl import config_dump, contexts, envoy_tables, proxy_config_admin
from tools.mizzenctl.sources import (
    SourceError,
    add_pilot_flags,
    envoy_clusters,
    envoy_config_dump,
    pilot_config,
    pilot_urls,
)
from tools.mizzenctl.table import render

KINDS = ("clusters", "listeners", "routes", "endpoints")


def _source(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config dump, origins) from Envoy's admin or from pilot."""
    include_eds = args.kind == "endpoints"
    if args.admin:
        return envoy_config_dump(args.admin, include_eds=include_eds), {}
    view = pilot_config(pilot_urls(args), args.proxy, include_eds=include_eds)
    return view.dump, view.origins


def table(kind: str, dump: dict[str, Any], origins: dict[str, Any], args: argparse.Namespace,
          clusters_status: dict[str, Any] | None = None) -> str:
    """The table for `kind` (pure, given the fetched documents)."""
    if kind == "clusters":
        rows = envoy_tables.cluster_rows(config_dump.clusters(dump), origins.get("destination_rules"),
                                         fqdn=args.fqdn, port=args.port, subset=args.subset,
                                         direction=args.direction)
        return render(envoy_tables.CLUSTER_HEADER, rows)
    if kind == "listeners":
        rows = envoy_tables.listener_rows(config_dump.listeners(dump), address=args.address, port=args.port)
        return render(envoy_tables.LISTENER_HEADER, rows)
    if kind == "routes":
        rows = envoy_tables.route_rows(config_dump.route_configs(dump), name=args.name)
        return render(envoy_tables.ROUTE_HEADER, rows)
    filters = {"cluster": args.cluster, "address": args.address, "port": args.port, "status": args.status}
    if clusters_status is not None:
        rows = envoy_tables.endpoint_rows_from_clusters(clusters_status, **filters)
    else:
        rows = envoy_tables.endpoint_rows_from_assignments(config_dump.load_assignments(dump), **filters)
    return render(envoy_tables.ENDPOINT_HEADER, rows)


def raw(kind: str, dump: dict[str, Any], clusters_status: dict[str, Any] | None = None) -> Any:
    """What `-o json` prints: the resources themselves (for endpoints from an Envoy admin,
    Envoy's cluster statuses, as istioctl prints them)."""
    if kind == "clusters":
        return config_dump.clusters(dump)
    if kind == "listeners":
        return config_dump.listeners(dump)
    if kind == "routes":
        return config_dump.route_configs(dump)
    if clusters_status is not None:
        return clusters_status.get("cluster_statuses", [])
    return config_dump.load_assignments(dump)


def run(args: argparse.Namespace) -> int:
    if not args.proxy and not args.admin:
        print("error: name a proxy (<pod>.<namespace>) or pass --admin host:port", file=sys.stderr)
        return 2
    try:
        dump, origins = _source(args)
        statuses = envoy_clusters(args.admin) if args.admin and args.kind == "endpoints" else None
    except SourceError as exc:
        print(f"error: {exc}; {contexts.explain(args)}", file=sys.stderr)
        return 1
    if args.output == "json":
        print(json.dumps(raw(args.kind, dump, statuses), indent=2))
    else:
        print(table(args.kind, dump, origins, args, statuses), end="")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("proxy-config", aliases=["pc"],
                                 help="one proxy's clusters, listeners, routes, endpoints, secrets, bootstrap or "
                                      "log levels, as Envoy holds them")
    kinds = parser.add_subparsers(dest="kind", required=True)
    for kind in KINDS:
        sub = kinds.add_parser(kind, help=f"the proxy's {kind}")
        sub.add_argument("proxy", nargs="?", help="<pod>.<namespace>, a pod name, or a full node id")
        sub.add_argument("--admin", metavar="HOST:PORT",
                         help="read the proxy's Envoy admin instead of pilot (what Envoy actually runs)")
        sub.add_argument("-o", "--output", choices=("table", "json"), default="table")
        sub.add_argument("--port", type=int, default=0, help="only this port")
        add_pilot_flags(sub)
        if kind == "clusters":
            sub.add_argument("--fqdn", default="", help="only clusters whose name contains this host")
            sub.add_argument("--subset", default="", help="only this subset")
            sub.add_argument("--direction", default="", choices=("", "inbound", "outbound"))
        elif kind == "listeners":
            sub.add_argument("--address", default="", help="only listeners on this address")
        elif kind == "routes":
            sub.add_argument("--name", default="", help="only this route configuration")
        else:
            sub.add_argument("--cluster", default="", help="only this cluster")
            sub.add_argument("--address", default="", help="only this endpoint address")
            sub.add_argument("--status", default="", help="only endpoints with this health status")
        sub.set_defaults(run=run)
    proxy_config_admin.add_parsers(kinds)
