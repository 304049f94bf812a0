"""The pod annotations and labels injection reads or writes (Istio's names), and the
parsing of the ones a user sets, each refused with the annotation named.

Istio validates these before rendering (`validateAnnotations`); so does Mizzen, so a bad
value is an admission error naming it, never an init container failing later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from libs.capture import (
    ALL,
    CaptureSettings,
    parse_ip_ranges,
    parse_ip_ranges_or_all,
    parse_ports,
    parse_ports_or_all,
)
from libs.inject._errors import InvalidPod
from libs.inject._quantity import parse_quantity

INJECT = "sidecar.istio.io/inject"
STATUS = "sidecar.istio.io/status"
PROXY_CONFIG = "proxy.istio.io/config"
PROXY_IMAGE = "sidecar.istio.io/proxyImage"
INTERCEPTION_MODE = "sidecar.istio.io/interceptionMode"
REWRITE_PROBES = "sidecar.istio.io/rewriteAppHTTPProbers"
PROXY_CPU = "sidecar.istio.io/proxyCPU"
PROXY_MEMORY = "sidecar.istio.io/proxyMemory"
PROXY_CPU_LIMIT = "sidecar.istio.io/proxyCPULimit"
PROXY_MEMORY_LIMIT = "sidecar.istio.io/proxyMemoryLimit"
INCLUDE_OUTBOUND_IP_RANGES = "traffic.sidecar.istio.io/includeOutboundIPRanges"
EXCLUDE_OUTBOUND_IP_RANGES = "traffic.sidecar.istio.io/excludeOutboundIPRanges"
INCLUDE_INBOUND_PORTS = "traffic.sidecar.istio.io/includeInboundPorts"
EXCLUDE_INBOUND_PORTS = "traffic.sidecar.istio.io/excludeInboundPorts"
EXCLUDE_OUTBOUND_PORTS = "traffic.sidecar.istio.io/excludeOutboundPorts"
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"
# Labels the injector adds: pilot's auto mTLS reads tlsMode, telemetry the canonical names.
TLS_MODE = "security.istio.io/tlsMode"
CANONICAL_NAME = "service.istio.io/canonical-name"
CANONICAL_REVISION = "service.istio.io/canonical-revision"
# The annotation prefix pilot reads from a proxy's metadata (Mixer's check opt-out).
POLICY_PREFIX = "policy.istio.io/"
# Inbound ports the sidecar itself listens on, never captured (istio-iptables' -d).
PROXY_INBOUND_PORTS = (15090, 15021)

_RESOURCE_ANNOTATIONS = (("requests", "cpu", PROXY_CPU), ("requests", "memory", PROXY_MEMORY),
                         ("limits", "cpu", PROXY_CPU_LIMIT), ("limits", "memory", PROXY_MEMORY_LIMIT))


def path_of(annotation: str) -> str:
    return f"metadata.annotations[{annotation}]"


def _parsed(annotations: Mapping[str, str], name: str, parse: Any, default: Any) -> Any:
    if name not in annotations:
        return default
    try:
        return parse(annotations[name])
    except ValueError as exc:
        raise InvalidPod(path_of(name), str(exc)) from exc


def capture_settings(annotations: Mapping[str, str], status_port: int) -> CaptureSettings:
    """The `traffic.sidecar.istio.io/*` annotations as the init container's capture."""
    excluded = _parsed(annotations, EXCLUDE_INBOUND_PORTS, parse_ports, ())
    # Like Istio's -d: the proxy's own ports, the user's, then the agent's status port.
    exclude_inbound = tuple(dict.fromkeys((*PROXY_INBOUND_PORTS, *excluded, status_port)))
    return CaptureSettings(
        include_inbound_ports=_parsed(annotations, INCLUDE_INBOUND_PORTS, parse_ports_or_all, ALL),
        exclude_inbound_ports=exclude_inbound,
        include_outbound_ip_ranges=_parsed(annotations, INCLUDE_OUTBOUND_IP_RANGES, parse_ip_ranges_or_all, ALL),
        exclude_outbound_ip_ranges=_parsed(annotations, EXCLUDE_OUTBOUND_IP_RANGES, parse_ip_ranges, ()),
        exclude_outbound_ports=_parsed(annotations, EXCLUDE_OUTBOUND_PORTS, parse_ports, ()),
    )


def proxy_resources(annotations: Mapping[str, str],
                    defaults: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """Istio's rule: any of the four resource annotations replaces the values' resources
    with exactly what the annotations set."""
    if not any(name in annotations for _, _, name in _RESOURCE_ANNOTATIONS):
        return {kind: dict(amounts) for kind, amounts in defaults.items()}
    resources: dict[str, dict[str, str]] = {}
    for kind, resource, name in _RESOURCE_ANNOTATIONS:
        if name in annotations:
            _parsed(annotations, name, parse_quantity, None)
            resources.setdefault(kind, {})[resource] = annotations[name].strip()
    return resources


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "t"):
        return True
    if lowered in ("false", "0", "f"):
        return False
    raise ValueError(f"{text!r} is not true or false")


def rewrite_probes(annotations: Mapping[str, str], default: bool) -> bool:
    return bool(_parsed(annotations, REWRITE_PROBES, _bool, default))


def interception_mode(annotations: Mapping[str, str]) -> None:
    mode = annotations.get(INTERCEPTION_MODE, "REDIRECT")
    if mode != "REDIRECT":
        raise InvalidPod(path_of(INTERCEPTION_MODE), f"{mode} is not supported; Mizzen's sidecars capture with "
                                                     "iptables REDIRECT")
