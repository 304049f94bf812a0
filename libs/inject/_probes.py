"""The app probe rewrite (Istio's, on by default): the kubelet's probes of the app go to
the agent's `/app-health/<container>/livez|readyz|startupz` on its status port, and the
agent probes the app with the originals, which it reads from ISTIO_KUBE_APP_PROBERS.

Why: with mTLS STRICT, the sidecar refuses the kubelet's plaintext probe of the app's port,
and an app whose probe is a TCP connect would always look alive to a sidecar that accepts
every connection.  httpGet, tcpSocket and grpc probes are rewritten; exec probes run in the
container and need nothing.  Named ports are resolved to numbers, as the agent cannot see
the pod spec.  ISTIO_KUBE_APP_PROBERS is Istio's JSON:
`{"/app-health/web/livez": {"httpGet": {"path": "/health", "port": 8080}, "timeoutSeconds": 3}}`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from libs.inject._errors import InvalidPod

PROBES = (("livenessProbe", "livez"), ("readinessProbe", "readyz"), ("startupProbe", "startupz"))
# Fields of each probe action the agent needs, in Istio's JSON names.
_HTTP_FIELDS = ("path", "host", "scheme", "httpHeaders")
_TCP_FIELDS = ("host",)
_GRPC_FIELDS = ("service",)


def app_health_path(container: str, kind: str) -> str:
    return f"/app-health/{container}/{kind}"


def _port(container: Mapping[str, Any], port: Any, path: str) -> int:
    """A probe's port as a number: named ports are looked up in the container's ports."""
    if isinstance(port, int) and not isinstance(port, bool):
        if not 1 <= port <= 65535:
            raise InvalidPod(path, f"{port} is not a port number (1-65535)")
        return port
    if isinstance(port, str) and port.isdigit():
        return _port(container, int(port), path)
    named = {p.get("name"): p.get("containerPort") for p in container.get("ports") or [] if isinstance(p, dict)}
    found = named.get(port) if isinstance(port, str) else None
    if isinstance(found, int):
        return found
    raise InvalidPod(path, f"container {container.get('name')!r} has no port named {port!r} "
                           f"(its named ports: {', '.join(sorted(n for n in named if n)) or 'none'})")


def _original(container: Mapping[str, Any], probe: Mapping[str, Any], path: str) -> dict[str, Any] | None:
    """The probe as the agent runs it, or None for a probe it does not take over (exec)."""
    for action, fields in (("httpGet", _HTTP_FIELDS), ("tcpSocket", _TCP_FIELDS), ("grpc", _GRPC_FIELDS)):
        body = probe.get(action)
        if isinstance(body, dict):
            original: dict[str, Any] = {key: copy.deepcopy(body[key]) for key in fields if key in body}
            original["port"] = _port(container, body.get("port"), f"{path}.{action}.port")
            prober: dict[str, Any] = {action: original}
            if "timeoutSeconds" in probe:
                prober["timeoutSeconds"] = probe["timeoutSeconds"]
            return prober
    return None


def _rewritten(probe: Mapping[str, Any], url: str, status_port: int) -> dict[str, Any]:
    """The probe the kubelet runs instead: the same timings, an httpGet of the agent."""
    rewritten = {key: copy.deepcopy(value) for key, value in probe.items()
                 if key not in ("httpGet", "tcpSocket", "grpc")}
    http: dict[str, Any] = {"path": url, "port": status_port}
    headers = (probe.get("httpGet") or {}).get("httpHeaders")
    if headers:
        # Istio keeps them; they reach the agent, which sends the originals to the app.
        http["httpHeaders"] = copy.deepcopy(headers)
    # No host (the kubelet probes the pod IP, where the agent listens) and no HTTPS: the
    # agent speaks plain HTTP to the kubelet and the original scheme to the app.
    rewritten["httpGet"] = http
    return rewritten


def rewrite_probes(containers: list[dict[str, Any]], status_port: int) -> dict[str, Any]:
    """Rewrite the app containers' probes in place; return ISTIO_KUBE_APP_PROBERS' entries."""
    probers: dict[str, Any] = {}
    for i, container in enumerate(containers):
        name = str(container.get("name", ""))
        for field, kind in PROBES:
            probe = container.get(field)
            if not isinstance(probe, dict):
                continue
            original = _original(container, probe, f"spec.containers[{i}].{field}")
            if original is None:
                continue
            url = app_health_path(name, kind)
            probers[url] = original
            container[field] = _rewritten(probe, url, status_port)
    return probers
