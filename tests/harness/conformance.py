"""Istio's own config files as Mizzen config: the resources Mizzen supports, Kubernetes
Services as ServiceEntries, and a ServiceEntry for every host the routing config names
that no service defines, so that every route and subset has a cluster behind it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from libs.config import Resource, parse_text
from services.pilot.model.mesh import MeshConfig, resolve_host

MESH = MeshConfig()
# Where generated endpoints point: nothing listens there, and nothing needs to.
PLACEHOLDER_ADDRESS = "127.0.0.9"


@dataclass
class _Host:
    namespace: str
    # port number -> protocol
    ports: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Loaded:
    text: str
    resources: list[Resource]
    generated: list[str]
    skipped: list[str]


def _service_from_kubernetes(body: dict[str, Any]) -> dict[str, Any]:
    """A Kubernetes Service as the ServiceEntry pilot's Kubernetes registry would make of it."""
    metadata = body.get("metadata", {})
    namespace = metadata.get("namespace", "default")
    ports = [{"number": p["port"], "name": p.get("name") or f"port-{p['port']}",
              **({"targetPort": p["targetPort"]} if isinstance(p.get("targetPort"), int) else {})}
             for p in body.get("spec", {}).get("ports", [])]
    return {
        "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
        "metadata": {"name": f"k8s-{metadata['name']}", "namespace": namespace},
        "spec": {"hosts": [f"{metadata['name']}.{namespace}.svc.{MESH.domain_suffix}"], "ports": ports,
                 "location": "MESH_INTERNAL", "resolution": "STATIC",
                 "workloadSelector": {"labels": body.get("spec", {}).get("selector", {})}},
    }


def _destinations(rules: Iterable[dict[str, Any]], protocol: str) -> Iterable[tuple[dict[str, Any], str]]:
    for rule in rules:
        for route in rule.get("route", []):
            yield route.get("destination", {}), protocol
        if "mirror" in rule:
            yield rule["mirror"], protocol
        for mirror in rule.get("mirrors", []):
            yield mirror.get("destination", {}), protocol


def _named_hosts(resource: Resource) -> Iterable[tuple[str, int | None, str]]:
    """(host, port or None, protocol) for every host a routing resource names."""
    spec = resource.spec
    if resource.kind == "VirtualService":
        for host in spec.get("hosts", []):
            yield host, None, "HTTP"
        for kind, protocol in (("http", "HTTP"), ("tcp", "TCP"), ("tls", "TLS")):
            for destination, proto in _destinations(spec.get(kind, []), protocol):
                yield destination.get("host", ""), destination.get("port", {}).get("number"), proto
    elif resource.kind == "DestinationRule":
        yield spec.get("host", ""), None, "HTTP"
        for setting in spec.get("trafficPolicy", {}).get("portLevelSettings", []):
            yield spec.get("host", ""), setting.get("port", {}).get("number"), "HTTP"
    elif resource.kind == "Gateway":
        for server in spec.get("servers", []):
            for host in server.get("hosts", []):
                yield host.rpartition("/")[2], None, "HTTP"


def _generated_entries(resources: list[Resource]) -> list[dict[str, Any]]:
    known = {host for r in resources if r.kind == "ServiceEntry" for host in r.spec.get("hosts", [])}
    wanted: dict[str, _Host] = {}
    for resource in resources:
        for name, port, protocol in _named_hosts(resource):
            if not name or "*" in name:
                continue
            host = resolve_host(name, resource.namespace, MESH)
            if host in known:
                continue
            entry = wanted.setdefault(host, _Host(resource.namespace))
            if port is not None:
                entry.ports.setdefault(port, protocol)
    entries = []
    for i, (host, entry) in enumerate(sorted(wanted.items())):
        ports = entry.ports or {80: "HTTP"}
        entries.append({
            "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
            "metadata": {"name": f"conformance-{i}", "namespace": entry.namespace},
            "spec": {
                "hosts": [host], "location": "MESH_INTERNAL", "resolution": "STATIC",
                "ports": [{"number": n, "name": f"{p.lower()}-{n}", "protocol": p} for n, p in sorted(ports.items())],
                "endpoints": [{"address": PLACEHOLDER_ADDRESS}],
            },
        })
    return entries


def load(data: bytes, source: str) -> Loaded:
    """The file's supported resources plus what makes them resolvable, as one YAML text."""
    parsed = parse_text(data, source)
    assert parsed.ok, parsed.errors()
    resources = [r for _, r in parsed.resources]
    services = [_service_from_kubernetes(d) for d in yaml.safe_load_all(data)
                if isinstance(d, dict) and d.get("kind") == "Service" and d.get("apiVersion") == "v1"]
    converted = [r for _, r in parse_text(yaml.safe_dump_all(services), f"{source} (Services)").resources]
    generated = _generated_entries([*resources, *converted])
    bodies = [r.to_dict() for r in (*resources, *converted)] + generated
    return Loaded(
        text=yaml.safe_dump_all(bodies, sort_keys=False),
        resources=resources,
        generated=[e["spec"]["hosts"][0] for e in generated],
        skipped=[str(u) for u in parsed.unsupported],
    )
