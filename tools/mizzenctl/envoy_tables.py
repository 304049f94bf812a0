"""Rows of `mizzenctl proxy-config` tables from Envoy resources as JSON, in istioctl's
shapes (istioctl/pkg/writer/envoy/configdump/*.go and writer/envoy/clusters).  Pure
functions: JSON in, rows out."""

from __future__ import annotations

from typing import Any

from libs.envoy import HCM_FILTER, HCM_TYPE, TCP_PROXY_FILTER, TCP_PROXY_TYPE

__all__ = [
    "CLUSTER_HEADER", "ENDPOINT_HEADER", "LISTENER_HEADER", "ROUTE_HEADER",
    "cluster_rows", "describe_domains", "describe_match", "endpoint_rows_from_assignments",
    "endpoint_rows_from_clusters", "istio_config", "listener_rows", "route_rows",
]

Json = dict[str, Any]
Row = tuple[str, ...]

CLUSTER_HEADER = ("SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE", "DESTINATION RULE")
LISTENER_HEADER = ("ADDRESS", "PORT", "MATCH", "DESTINATION")
ROUTE_HEADER = ("NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE")
ENDPOINT_HEADER = ("ENDPOINT", "STATUS", "OUTLIER CHECK", "CLUSTER")

ISTIO_CONFIG_PREFIX = "/apis/networking.istio.io/v1alpha3/namespaces/"


def istio_config(metadata: Json | None) -> str:
    """`name.namespace` from Istio's `istio.config` metadata, as istioctl renders it."""
    path = ((metadata or {}).get("filter_metadata", {}).get("istio", {})).get("config", "")
    if not path:
        return ""
    pieces = path.split("/")
    return f"{pieces[7]}.{pieces[5]}" if path.startswith(ISTIO_CONFIG_PREFIX) and len(pieces) == 8 else "<unknown>"


# -- clusters -------------------------------------------------------------------------


def _cluster_key(name: str) -> tuple[str, str, int, str]:
    parts = name.split("|")
    if len(parts) > 3:
        return "|".join(parts[3:]), parts[2], int(parts[1]) if parts[1].isdigit() else 0, parts[0]
    return name, "", 0, ""


def cluster_rows(clusters: list[Json], destination_rules: dict[str, str] | None = None, *, fqdn: str = "",
                 port: int = 0, subset: str = "", direction: str = "") -> list[Row]:
    rows: list[tuple[tuple[str, str, int, str], Row]] = []
    for cluster in clusters:
        name = cluster.get("name", "")
        if (fqdn and fqdn not in name) or (direction and direction not in name) or (subset and subset not in name) \
                or (port and f"|{port}|" not in name):
            continue
        kind = cluster.get("type") or cluster.get("cluster_type", {}).get("name") or "STATIC"
        rule = istio_config(cluster.get("metadata")) or (destination_rules or {}).get(name, "")
        key = _cluster_key(name)
        if len(name.split("|")) > 3:
            rows.append((key, (key[0], str(key[2]), key[1] or "-", key[3], kind, rule)))
        else:
            rows.append((key, (name, "-", "-", "-", kind, rule)))
    return [row for _, row in sorted(rows, key=lambda item: item[0])]


# -- listeners ------------------------------------------------------------------------


def _address(listener: Json) -> tuple[str, int]:
    address = listener.get("address", {})
    if "socket_address" in address:
        return address["socket_address"].get("address", ""), int(address["socket_address"].get("port_value", 0))
    if "pipe" in address:
        return address["pipe"].get("path", ""), 0
    return listener.get("name", ""), 0


def filter_chains(listener: Json) -> list[Json]:
    chains = list(listener.get("filter_chains", []))
    if "default_filter_chain" in listener:
        chains.append(listener["default_filter_chain"])
    return chains


def _filter_type(network_filter: Json) -> str:
    kind = network_filter.get("typed_config", {}).get("@type", "")
    name = network_filter.get("name", "")
    if kind == HCM_TYPE or name == HCM_FILTER:
        return "HTTP"
    if kind == TCP_PROXY_TYPE or name == TCP_PROXY_FILTER:
        return "TCP"
    return ""


def _listener_type(listener: Json) -> str:
    kinds = {_filter_type(f) for chain in filter_chains(listener) for f in chain.get("filters", [])} - {""}
    return "+".join(sorted(kinds)) if kinds else "UNKNOWN"


_ALPN_NAMES = {
    ("http/1.0", "http/1.1", "h2c", "istio-http/1.0", "istio-http/1.1", "istio-h2"): "App: HTTP TLS",
    ("istio", "istio-http/1.0", "istio-http/1.1", "istio-h2"): "App: Istio HTTP Plain",
    ("istio-peer-exchange", "istio"): "App: TCP TLS",
    ("http/1.0", "http/1.1", "h2c"): "App: HTTP",
}


def _describe_chain_match(match: Json) -> str:
    parts = []
    if match.get("server_names"):
        parts.append(f"SNI: {','.join(match['server_names'])}")
    if match.get("transport_protocol"):
        parts.append(f"Trans: {match['transport_protocol']}")
    if match.get("application_protocols"):
        alpn = tuple(match["application_protocols"])
        parts.append(_ALPN_NAMES.get(alpn, f"App: {','.join(alpn)}"))
    port = f":{match['destination_port']}" if "destination_port" in match else ""
    if match.get("address_suffix"):
        parts.append(f"Addr: {match['address_suffix']}{port}")
    if match.get("prefix_ranges"):
        ranges = ",".join(f"{r.get('address_prefix', '')}/{r.get('prefix_len', 0)}" for r in match["prefix_ranges"])
        parts.append(f"Addr: {ranges}{port}")
    elif port and not match.get("address_suffix"):
        parts.append(f"Port{port}")
    return "; ".join(parts) or "ALL"


def _describe_destination(filters: list[Json]) -> str:
    for network_filter in filters:
        config = network_filter.get("typed_config", {})
        kind = _filter_type(network_filter)
        if kind == "HTTP":
            if "route_config" in config:
                vhosts = []
                for vhost in config["route_config"].get("virtual_hosts", []):
                    domains = "" if vhost.get("domains") == ["*"] else "/".join(vhost.get("domains", []))
                    routes = ", ".join(describe_match(r.get("match", {})) for r in vhost.get("routes", []))
                    vhosts.append(f"{domains} {routes}".strip())
                return f"Inline Route: {'; '.join(vhosts)}"
            if config.get("rds", {}).get("route_config_name"):
                return f"Route: {config['rds']['route_config_name']}"
            return "HTTP"
        if kind == "TCP":
            cluster = config.get("cluster") or ",".join(
                c.get("name", "") for c in config.get("weighted_clusters", {}).get("clusters", []))
            return cluster if "Cluster" in cluster else f"Cluster: {cluster}"
    return "Non-HTTP/Non-TCP"


def listener_rows(listeners: list[Json], *, address: str = "", port: int = 0) -> list[Row]:
    def key(listener: Json) -> tuple[int, str, str]:
        host, number = _address(listener)
        return number, host, _listener_type(listener)

    rows: list[Row] = []
    for listener in sorted(listeners, key=key):
        host, number = _address(listener)
        if (address and host != address) or (port and number != port):
            continue
        chains = [(_describe_chain_match(c.get("filter_chain_match", {})), _describe_destination(c.get("filters", [])))
                  for c in filter_chains(listener)]
        for match, destination in sorted(chains, key=lambda item: item[1], reverse=True):
            rows.append((host, str(number), match, destination))
    return rows


# -- routes ---------------------------------------------------------------------------


def _header(matcher: Json) -> str:
    name = matcher.get("name", "")
    string = matcher.get("string_match", {})
    if "exact" in string or "exact_match" in matcher:
        text = f"{name}={string.get('exact', matcher.get('exact_match', ''))}"
    elif "prefix" in string or "prefix_match" in matcher:
        text = f"{name}={string.get('prefix', matcher.get('prefix_match', ''))}*"
    elif "safe_regex" in string or "safe_regex_match" in matcher:
        text = f"{name}~{(string.get('safe_regex') or matcher.get('safe_regex_match', {})).get('regex', '')}"
    else:
        text = name
    return f"!{text}" if matcher.get("invert_match") else text


def describe_match(match: Json) -> str:
    """istioctl's route MATCH (`/path*`, `/exact`, `regex …`), plus header conditions in
    brackets (istioctl omits them, which leaves header-routed rows indistinguishable)."""
    conditions = []
    if "prefix" in match:
        conditions.append(f"{match['prefix']}*")
    if "path_separated_prefix" in match:
        conditions.append(f"{match['path_separated_prefix']}/*")
    if "path" in match:
        conditions.append(match["path"])
    if "safe_regex" in match:
        conditions.append(f"regex {match['safe_regex'].get('regex', '')}")
    headers = [_header(h) for h in match.get("headers", [])]
    if headers:
        conditions.append(f"[{', '.join(headers)}]")
    return " ".join(conditions)


def _unexpand(domains: list[str]) -> list[str]:
    present = set(domains)
    redundant = {d for d in domains for suffix in (".svc.cluster.local", ".svc")
                 if d.endswith(suffix) and d[: -len(suffix)] in present}
    return [d for d in domains if d not in redundant]


def describe_domains(domains: list[str], *, most: int = 2) -> str:
    """istioctl's DOMAINS: one domain as is; else the forms without a port, shortest
    spelling of each service, the first two and a count of the rest."""
    if len(domains) <= 1:
        return domains[0] if domains else ""
    bare = _unexpand([d for d in domains if ":" not in d or (d.count(":") > 2 and d.endswith("]"))])
    if len(bare) > most:
        return f"{', '.join(bare[:most])} + {len(bare) - most} more..."
    return ", ".join(bare)


def _is_passthrough(route: Json) -> bool:
    return route.get("route", {}).get("cluster") == "PassthroughCluster"


def _route_config_key(config: Json) -> tuple[int, str]:
    name = config.get("name", "")
    return (int(name), "") if name.isdigit() else (1 << 30, name)


def route_rows(configs: list[Json], *, name: str = "") -> list[Row]:
    """One row per route; VIRTUAL SERVICE from the route's `istio.config` metadata."""
    rows: list[Row] = []
    for config in sorted(configs, key=_route_config_key):
        config_name = config.get("name", "")
        if name and config_name != name:
            continue
        for vhost in config.get("virtual_hosts", []):
            domains = describe_domains(vhost.get("domains", []))
            routes = vhost.get("routes", [])
            if not routes:
                rows.append((config_name, vhost.get("name", ""), domains, "/*", "404"))
            for route in routes:
                if not _is_passthrough(route):
                    rows.append((config_name, vhost.get("name", ""), domains,
                                 describe_match(route.get("match", {})), istio_config(route.get("metadata"))))
    return rows


# -- endpoints ------------------------------------------------------------------------


def _socket(address: Json) -> tuple[str, int]:
    if "socket_address" in address:
        return address["socket_address"].get("address", ""), int(address["socket_address"].get("port_value", 0))
    if "pipe" in address:
        return f"unix://{address['pipe'].get('path', '')}", 0
    return "unknown", 0


def _endpoint(host: str, port: int) -> str:
    return f"{host}:{port}" if port else host


def _sorted_endpoints(found: list[tuple[str, int, str, str, str]]) -> list[Row]:
    return [(_endpoint(host, port), status, outlier, cluster)
            for host, port, cluster, status, outlier in sorted(found, key=lambda e: (e[0], e[1], e[2]))]


def endpoint_rows_from_clusters(statuses: Json, *, cluster: str = "", address: str = "", port: int = 0,
                                status: str = "") -> list[Row]:
    """From Envoy's `/clusters?format=json`: the health Envoy sees, and outlier ejections."""
    found = []
    for entry in statuses.get("cluster_statuses", []):
        for host in entry.get("host_statuses", []):
            ip, number = _socket(host.get("address", {}))
            health = host.get("health_status", {})
            state = health.get("eds_health_status", "UNKNOWN")
            if (cluster and entry.get("name") != cluster) or (address and ip != address) or \
                    (port and number != port) or (status and state.lower() != status.lower()):
                continue
            found.append((ip, number, entry.get("name", ""), state,
                          "FAILED" if health.get("failed_outlier_check") else "OK"))
    return _sorted_endpoints(found)


def endpoint_rows_from_assignments(assignments: list[Json], *, cluster: str = "", address: str = "",
                                   port: int = 0, status: str = "") -> list[Row]:
    """From EDS resources (pilot's view): the health pilot declared.  Envoy treats an
    UNKNOWN health status as healthy and reports it as HEALTHY, so this does too; outlier
    detection happens only in Envoy, hence `-`."""
    found = []
    for assignment in assignments:
        name = assignment.get("cluster_name", "")
        for locality in assignment.get("endpoints", []):
            for endpoint in locality.get("lb_endpoints", []):
                ip, number = _socket(endpoint.get("endpoint", {}).get("address", {}))
                state = endpoint.get("health_status", "UNKNOWN")
                state = "HEALTHY" if state == "UNKNOWN" else state
                if (cluster and name != cluster) or (address and ip != address) or (port and number != port) or \
                        (status and state.lower() != status.lower()):
                    continue
                found.append((ip, number, name, state, "-"))
    return _sorted_endpoints(found)
