"""`mizzenctl x describe pod <pod>` and `x describe service <svc>`: the Istio config that
applies to a workload or service, in istioctl's shape (describe_render.py says what is
printed).  Fetched like istioctl does, with Mizzen's sources in Kubernetes' place:

- the proxies, their labels and addresses: pilot's `/debug/syncz`;
- the services and which pods back them: pilot's `/debug/registryz` (ServiceEntries,
  the local mesh's registry, Kubernetes Services alike);
- the rules each proxy was given: pilot's `/debug/config_dump` and `/debug/config_origins`
  for the proxy (and for every gateway, to find what exposes the service);
- the rules themselves: galley's API (the source of truth, as Kubernetes is for istioctl).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tools.mizzenctl import contexts, proxy_status
from tools.mizzenctl.describe_render import Mesh, ProxyView, pod_text, service_text
from tools.mizzenctl.galley_client import GalleyUnreachable, add_connection_flags, request
from tools.mizzenctl.sources import SourceError, add_pilot_flags, get_json, pilot_config, pilot_urls, syncz

__all__ = ["add_parser", "find_service"]

Json = dict[str, Any]
KINDS = ("VirtualService", "DestinationRule", "Gateway", "PeerAuthentication", "AuthorizationPolicy", "MeshConfig")


class DescribeError(Exception):
    pass


def _galley_config(args: argparse.Namespace) -> Mesh:
    config: dict[str, list[Json]] = {}
    for kind in KINDS:
        response = request(args, "GET", "/apis/v1/resources", params={"kind": kind})
        if response.status_code != 200:
            raise DescribeError(f"galley answered {response.status_code} listing {kind}: {response.text.strip()}")
        config[kind] = response.json()["items"]
    mesh = next((m.get("spec") or {} for m in config.get("MeshConfig", [])), {})
    return Mesh(config, root_namespace=str(mesh.get("rootNamespace") or "istio-system"),
                trust_domain=str(mesh.get("trustDomain") or "cluster.local"))


def _view(urls: list[str], row: Json) -> ProxyView:
    fetched = pilot_config(urls, row["proxy"], include_eds=False)
    return ProxyView(row, fetched.dump, fetched.origins)


def _gateways(urls: list[str], rows: list[Json]) -> list[ProxyView]:
    return [_view(urls, row) for row in sorted(rows, key=lambda r: str(r.get("name"))) if row.get("type") == "router"]


def _services(urls: list[str]) -> list[Json]:
    services: list[Json] = []
    seen: set[str] = set()
    for url in urls:
        for service in get_json(url, "/debug/registryz", what="pilot")["services"]:
            if service["hostname"] not in seen:
                seen.add(service["hostname"])
                services.append(service)
    return services


def find_service(services: list[Json], name: str, namespace: str) -> Json | None:
    """`productpage`, `productpage.default` or a full hostname, as istioctl reads `<svc>`."""
    short, _, ns = name.partition(".")
    namespace = ns if ns and "." not in ns else namespace
    for service in services:
        host = str(service["hostname"])
        if host == name or (service.get("namespace") == namespace and host.startswith(f"{short}.{namespace}.")):
            return service
    return None


def _pod(args: argparse.Namespace) -> str:
    urls = pilot_urls(args)
    rows = syncz(urls)
    chosen = proxy_status.select(rows, args.name if "." in args.name else f"{args.name}.{args.namespace}") \
        or proxy_status.select(rows, args.name)
    if len(chosen) != 1:
        found = ", ".join(str(r.get("name") or r["proxy"]) for r in chosen) or "none"
        raise DescribeError(f"pods {args.name!r} not found among the proxies connected to pilot (matches: {found})")
    mesh = _galley_config(args)
    return pod_text(_view(urls, chosen[0]), _services(urls), mesh, _gateways(urls, rows), args.namespace)


def _service(args: argparse.Namespace) -> str:
    urls = pilot_urls(args)
    services = _services(urls)
    service = find_service(services, args.name, args.namespace)
    if service is None:
        raise DescribeError(f"services {args.name!r} not found in pilot's registry (namespace {args.namespace})")
    rows = syncz(urls)
    ips = {str(endpoint).rpartition(":")[0] for endpoints in (service.get("endpoints") or {}).values()
           for endpoint in endpoints}
    pods = [_view(urls, row) for row in sorted(rows, key=lambda r: str(r.get("name")))
            if row.get("ip") in ips and row.get("type") == "sidecar"]
    mesh = _galley_config(args)
    return service_text(service, pods, mesh, _gateways(urls, rows), args.namespace)


def run(args: argparse.Namespace) -> int:
    try:
        text = _pod(args) if args.what in ("pod", "po") else _service(args)
    except DescribeError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except SourceError as exc:
        print(f"error: {exc}; {contexts.explain(args)}", file=sys.stderr)
        return 1
    except GalleyUnreachable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(text, end="")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    """`describe pod|service` under `mizzenctl x`'s subcommands."""
    describe = commands.add_parser("describe", aliases=["des"], help="describe a pod or service and the Istio "
                                                                    "config that applies to it (istioctl x describe)")
    kinds = describe.add_subparsers(dest="what", required=True)
    for what, aliases, text in (
        ("pod", ["po"], "a pod (a connected proxy): its services, their DestinationRules and VirtualServices, "
                        "its PeerAuthentication and mTLS mode, AuthorizationPolicies and exposing Gateways"),
        ("service", ["svc"], "a service: its DestinationRule and VirtualService, and the Gateways exposing it"),
    ):
        sub = kinds.add_parser(what, aliases=aliases, help=text, description=text[0].upper() + text[1:] + ".")
        sub.add_argument("name", help=f"the {what}: <name> or <name>.<namespace>")
        sub.add_argument("-n", "--namespace", default="default", help="namespace of a name without one")
        add_connection_flags(sub)
        add_pilot_flags(sub)
        sub.set_defaults(run=run)
