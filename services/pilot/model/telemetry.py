"""What the Telemetry API says about one proxy's access logs and traces.

Istio's precedence: a Telemetry in the root namespace applies mesh-wide, one in the
proxy's namespace overrides it, and one whose selector picks the workload overrides both;
each of `accessLogging` and `tracing` is taken from the most specific Telemetry that sets
it.  Metrics overrides are telemetry's to apply (it makes the metrics), not pilot's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from libs.config import Resource
from services.pilot.model.policies import policies_for
from services.pilot.model.proxy import Proxy
from services.pilot.model.push_context import PushContext

# Istio's built-in provider: Envoy's own file access log, to stdout.
ENVOY_PROVIDER = "envoy"


@dataclass(frozen=True)
class AccessLogging:
    providers: tuple[str, ...]
    disabled: bool = False
    # A CEL expression: only requests it holds for are logged.
    filter: str = ""
    # CLIENT_AND_SERVER, CLIENT (outbound and gateways) or SERVER (inbound).
    mode: str = "CLIENT_AND_SERVER"

    def applies(self, *, inbound: bool) -> bool:
        return applies(self.mode, inbound=inbound)


@dataclass(frozen=True)
class CustomTag:
    tag: str
    kind: str  # literal, environment or header
    value: str  # the literal, the variable or the header name
    default: str = ""


@dataclass(frozen=True)
class Tracing:
    sampling: float | None = None
    disabled: bool = False
    custom_tags: tuple[CustomTag, ...] = ()
    mode: str = "CLIENT_AND_SERVER"

    def applies(self, *, inbound: bool) -> bool:
        return applies(self.mode, inbound=inbound)


@dataclass(frozen=True)
class TelemetryView:
    """None for a field no Telemetry sets: the mesh config decides."""

    access_logging: tuple[AccessLogging, ...] | None = None
    tracing: Tracing | None = None
    # The resources it was made from: proxies with the same ones get the same view.
    key: tuple[str, ...] = ()


NO_TELEMETRY = TelemetryView()


def applies(mode: str, *, inbound: bool) -> bool:
    """Istio's WorkloadMode: SERVER is the inbound side, CLIENT the outbound side and gateways."""
    return mode in ("CLIENT_AND_SERVER", "SERVER" if inbound else "CLIENT")


def _specificity(resource: Resource, push: PushContext) -> tuple[bool, bool]:
    return resource.namespace != push.mesh.root_namespace, bool(resource.spec.get("selector"))


def _access_logging(entries: list[dict[str, Any]]) -> tuple[AccessLogging, ...]:
    return tuple(AccessLogging(
        providers=tuple(p.get("name", "") for p in entry.get("providers", [])) or (ENVOY_PROVIDER,),
        disabled=bool(entry.get("disabled", False)), filter=entry.get("filter", {}).get("expression", ""),
        mode=entry.get("match", {}).get("mode", "CLIENT_AND_SERVER")) for entry in entries)


def _tracing(entry: dict[str, Any]) -> Tracing:
    tags = []
    for tag, body in sorted(entry.get("customTags", {}).items()):
        kind = next(k for k in ("literal", "environment", "header") if k in body)
        value = body[kind].get("value" if kind == "literal" else "name", "")
        tags.append(CustomTag(tag, kind, value, body[kind].get("defaultValue", "")))
    sampling = entry.get("randomSamplingPercentage")
    return Tracing(sampling=None if sampling is None else float(sampling),
                   disabled=bool(entry.get("disableSpanReporting", False)), custom_tags=tuple(tags),
                   mode=entry.get("match", {}).get("mode", "CLIENT_AND_SERVER"))


def telemetry_for(proxy: Proxy, push: PushContext) -> TelemetryView:
    selected = sorted(policies_for("Telemetry", proxy, push), key=lambda r: _specificity(r, push))
    if not selected:
        return NO_TELEMETRY
    access: tuple[AccessLogging, ...] | None = None
    tracing: Tracing | None = None
    for resource in selected:  # least specific first: later ones override
        if "accessLogging" in resource.spec:
            access = _access_logging(resource.spec["accessLogging"])
        if resource.spec.get("tracing"):
            tracing = _tracing(resource.spec["tracing"][0])
    return TelemetryView(access, tracing, tuple(f"{r.namespace}/{r.name}" for r in selected))
