"""Istio's analysis messages: each kind has Istio's code, level and template
(istio/istio `pkg/config/analysis/msg/messages.yaml`), so a message reads as istioctl
prints it and a search for its code finds Istio's documentation."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

DOCS = "https://istio.io/latest/docs/reference/config/analysis"


class Level(enum.IntEnum):
    """Istio's levels, ordered so a threshold compares: Info < Warning < Error."""

    INFO = 1
    WARNING = 2
    ERROR = 3

    def __str__(self) -> str:
        return self.name.capitalize()

    @classmethod
    def parse(cls, value: str) -> Level:
        try:
            return cls[value.upper()]
        except KeyError:
            raise ValueError(f"{value!r} is not a level (Info, Warning or Error)") from None


@dataclass(frozen=True)
class MessageType:
    code: str
    name: str
    level: Level
    # A Go format string in Istio; here a str.format template over the message's arguments.
    template: str


# The messages Mizzen's analyzers report, by Istio's name.
ReferencedResourceNotFound = MessageType(
    "IST0101", "ReferencedResourceNotFound", Level.ERROR, "Referenced {0} not found: {1}")
GatewayPortNotOnWorkload = MessageType(
    "IST0104", "GatewayPortNotOnWorkload", Level.WARNING,
    "The gateway refers to a port that is not exposed on the workload (pod selector {0}; port {1})")
SchemaValidationError = MessageType("IST0106", "SchemaValidationError", Level.ERROR, "Schema validation error: {0}")
ConflictingMeshGatewayVirtualServiceHosts = MessageType(
    "IST0109", "ConflictingMeshGatewayVirtualServiceHosts", Level.ERROR,
    "The VirtualServices {0} associated with mesh gateway define the same host {1} which can lead to undefined "
    "behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.")
MTLSPolicyConflict = MessageType(
    "IST0113", "MTLSPolicyConflict", Level.ERROR,
    "A DestinationRule and Policy are in conflict with regards to mTLS for host {0}. The DestinationRule {1} "
    "specifies that mTLS must be {2} but the Policy object {3} specifies {4}.")
PortNameIsNotUnderNamingConvention = MessageType(
    "IST0118", "PortNameIsNotUnderNamingConvention", Level.INFO,
    "Port name {0} (port: {1}, targetPort: {2}) doesn't follow the naming convention of Istio port.")
NoMatchingWorkloadsFound = MessageType(
    "IST0127", "NoMatchingWorkloadsFound", Level.WARNING,
    "No matching workloads for this resource with the following labels: {0}")
NoServerCertificateVerificationDestinationLevel = MessageType(
    "IST0128", "NoServerCertificateVerificationDestinationLevel", Level.WARNING,
    "DestinationRule {0} in namespace {1} has TLS mode set to {2} but no caCertificates are set to validate "
    "server identity for host: {3}")
NoServerCertificateVerificationPortLevel = MessageType(
    "IST0129", "NoServerCertificateVerificationPortLevel", Level.WARNING,
    "DestinationRule {0} in namespace {1} has TLS mode set to {2} but no caCertificates are set to validate "
    "server identity for host: {3} at port {4}")
VirtualServiceUnreachableRule = MessageType(
    "IST0130", "VirtualServiceUnreachableRule", Level.WARNING, "VirtualService rule {0} not used ({1}).")
VirtualServiceIneffectiveMatch = MessageType(
    "IST0131", "VirtualServiceIneffectiveMatch", Level.INFO,
    "VirtualService rule {0} match {1} is not used (duplicate/overlapping match in rule {2}).")
VirtualServiceHostNotFoundInGateway = MessageType(
    "IST0132", "VirtualServiceHostNotFoundInGateway", Level.WARNING,
    "one or more host {0} defined in VirtualService {1} not found in Gateway {2}.")
SchemaWarning = MessageType("IST0133", "SchemaWarning", Level.WARNING, "Schema validation warning: {0}")
ConflictingGateways = MessageType(
    "IST0145", "ConflictingGateways", Level.ERROR,
    "Conflict with gateways {0} (workload selector {1}, port {2}, hosts {3}).")
DestinationRuleSubsetNotSelectPods = MessageType(
    "IST0173", "DestinationRuleSubsetNotSelectPods", Level.ERROR,
    "The Subset {0} defined in the DestinationRule does not select any pods. Which may lead to 503 UH "
    "(NoHealthyUpstream).")

ALL: tuple[MessageType, ...] = (
    ReferencedResourceNotFound, GatewayPortNotOnWorkload, SchemaValidationError,
    ConflictingMeshGatewayVirtualServiceHosts, MTLSPolicyConflict, PortNameIsNotUnderNamingConvention,
    NoMatchingWorkloadsFound, NoServerCertificateVerificationDestinationLevel,
    NoServerCertificateVerificationPortLevel, VirtualServiceUnreachableRule, VirtualServiceIneffectiveMatch,
    VirtualServiceHostNotFoundInGateway, SchemaWarning, ConflictingGateways, DestinationRuleSubsetNotSelectPods,
)


def quoted(value: str) -> str:
    """Go's %q for the plain strings messages carry."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def go_list(values: list[str]) -> str:
    """Go's %v of a []string: `[a b]`."""
    return "[" + " ".join(values) + "]"


@dataclass(frozen=True)
class Ref:
    """The resource a message is about: `VirtualService default/reviews`, and where it was
    read from when that was a file (`reviews.yaml[0]`)."""

    kind: str
    namespace: str
    name: str
    origin: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass(frozen=True)
class Message:
    type: MessageType
    resource: Ref | None
    args: tuple[Any, ...] = field(default=())

    @property
    def level(self) -> Level:
        return self.type.level

    @property
    def code(self) -> str:
        return self.type.code

    @property
    def text(self) -> str:
        return self.type.template.format(*self.args)

    @property
    def documentation_url(self) -> str:
        return f"{DOCS}/{self.code.lower()}/"

    def __str__(self) -> str:
        """istioctl's line: `Error [IST0101] (VirtualService default/reviews) Referenced host not found: "x"`."""
        where = ""
        if self.resource is not None:
            origin = f" {self.resource.origin}" if self.resource.origin else ""
            where = f" ({self.resource}{origin})"
        return f"{self.level} [{self.code}]{where} {self.text}"

    def to_dict(self) -> dict[str, str]:
        """istioctl's `-o json|yaml` shape."""
        body = {"code": self.code, "documentationUrl": self.documentation_url, "level": str(self.level),
                "message": self.text}
        if self.resource is not None:
            body["origin"] = str(self.resource)
            if self.resource.origin:
                body["reference"] = self.resource.origin
        return body

    def sort_key(self) -> tuple[str, str, str, str, str]:
        ref = self.resource
        return (ref.namespace, ref.kind, ref.name, self.code, self.text) if ref else ("", "", "", self.code, self.text)
