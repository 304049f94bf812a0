"""DestinationRule rules (istio/istio pkg/config/validation ValidateDestinationRule)."""

from __future__ import annotations

from typing import Any

from libs.config.validation import common
from libs.config.validation._checker import Checker


def validate(spec: dict[str, Any], check: Checker) -> None:
    host = spec.get("host", "")
    if not host:
        check.error("spec.host", "a host is required")
    else:
        common.wildcard_host(check, "spec.host", host)
    names: set[str] = set()
    for i, subset in enumerate(spec.get("subsets", [])):
        path = f"spec.subsets[{i}]"
        name = subset.get("name", "")
        if not name:
            check.error(f"{path}.name", "a subset needs a name")
        else:
            common.dns1123_label(check, f"{path}.name", name)
            if name in names:
                check.error(f"{path}.name", f"subset {name!r} is defined twice")
            names.add(name)
        common.labels(check, f"{path}.labels", subset.get("labels", {}))
