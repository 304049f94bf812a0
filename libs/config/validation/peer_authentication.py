"""PeerAuthentication rules (istio/istio pkg/config/validation ValidatePeerAuthentication)."""

from __future__ import annotations

from typing import Any

from libs.config.validation import labels, ports
from libs.config.validation._checker import Checker


def validate(spec: dict[str, Any], check: Checker) -> None:
    selector = spec.get("selector")
    if selector is not None:
        labels.selector(check, "spec.selector.matchLabels", selector.get("matchLabels", {}))
    port_level = spec.get("portLevelMtls")
    if port_level is None:
        return
    # Ports are those of the selected workloads; a mesh- or namespace-wide policy has none.
    if not (selector or {}).get("matchLabels"):
        check.error("spec.portLevelMtls", "a mesh- or namespace-wide policy (no selector labels) cannot have "
                                          "port level mTLS")
    if not port_level:
        check.error("spec.portLevelMtls", "port level mTLS, if set, needs at least one port")
    for port in port_level:
        ports.port_number(check, f"spec.portLevelMtls[{port}]", int(port))
