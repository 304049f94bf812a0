"""The kinds Mizzen serves, the API versions Istio serves them in, and their schemas."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from libs.config.schema import Message
from libs.config.schema import networking as net
from libs.config.validation import Checker
from libs.config.validation import destination_rule, gateway, service_entry, virtual_service

NETWORKING = "networking.istio.io"
SECURITY = "security.istio.io"
ISTIO_VERSIONS = ("v1alpha3", "v1beta1", "v1")

Validator = Callable[[dict[str, Any], Checker], None]


@dataclass(frozen=True)
class KindInfo:
    group: str
    kind: str
    plural: str
    versions: tuple[str, ...]
    schema: Message
    validate: Validator

    @property
    def api_versions(self) -> tuple[str, ...]:
        return tuple(f"{self.group}/{version}" for version in self.versions)


def _no_rules(spec: dict[str, Any], check: Checker) -> None:
    """Kinds whose only rules are their schema's."""


_KINDS: dict[str, KindInfo] = {}


def register(info: KindInfo) -> None:
    _KINDS[info.kind] = info


register(KindInfo(NETWORKING, "VirtualService", "virtualservices", ISTIO_VERSIONS,
                  net.VIRTUAL_SERVICE, virtual_service.validate))
register(KindInfo(NETWORKING, "DestinationRule", "destinationrules", ISTIO_VERSIONS,
                  net.DESTINATION_RULE, destination_rule.validate))
register(KindInfo(NETWORKING, "Gateway", "gateways", ISTIO_VERSIONS, net.GATEWAY, gateway.validate))
register(KindInfo(NETWORKING, "ServiceEntry", "serviceentries", ISTIO_VERSIONS,
                  net.SERVICE_ENTRY, service_entry.validate))


def lookup(api_version: str, kind: str) -> KindInfo | None:
    """The kind's info if Mizzen serves `kind` at `api_version`."""
    info = _KINDS.get(kind)
    if info is None or api_version not in info.api_versions:
        return None
    return info


def supported_kinds() -> list[KindInfo]:
    return list(_KINDS.values())


def kind_by_name(name: str) -> KindInfo | None:
    """Find a kind by its name, plural or singular lower-case form (for `mizzenctl get`)."""
    lowered = name.lower()
    for info in _KINDS.values():
        if lowered in (info.kind.lower(), info.plural, info.plural.rstrip("s")):
            return info
    return None
