"""Label keys and values, and workload selectors.

Two dialects: Kubernetes' own (metadata.labels, checked by the API server: lower-case
DNS-1123 prefixes) and Istio's `labels.Instance.Validate` for labels inside specs (subset
labels, endpoint labels, sourceLabels), which also accepts upper case in the prefix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from libs.config.validation._checker import Checker

# Kubernetes' object names (metadata.name / metadata.namespace), always lower case.
K8S_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
K8S_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

_NAME = "(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_ISTIO_LABEL = "[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?"
_ISTIO_KEY = re.compile(rf"^(?:({_ISTIO_LABEL}(?:\.{_ISTIO_LABEL})*)/)?({_NAME})$")
_VALUE = re.compile(f"^(?:{_NAME})?$")


def key_problem(key: str) -> str | None:
    match = _ISTIO_KEY.match(key)
    if match is None:
        return (f"invalid label key {key!r} (an optional DNS prefix and '/', then alphanumerics, "
                "'-', '_' or '.', starting and ending alphanumeric)")
    if match.group(1) and len(match.group(1)) > 253:
        return f"invalid label key {key!r} (DNS prefix is longer than 253 characters)"
    if len(match.group(2)) > 63:
        return f"invalid label key {key!r} (name is longer than 63 characters)"
    return None


def value_problem(value: str) -> str | None:
    if len(value) > 63 or not _VALUE.match(value):
        return (f"invalid label value {value!r} (empty, or at most 63 alphanumerics, '-', '_' or '.', "
                "starting and ending alphanumeric)")
    return None


def labels(check: Checker, path: str, values: Mapping[str, str]) -> None:
    """Istio's label rule for labels inside a spec."""
    for key, value in values.items():
        problem = key_problem(key) or value_problem(value)
        if problem:
            check.error(f"{path}[{key}]", problem)


def kubernetes_labels(check: Checker, path: str, values: Mapping[str, str]) -> None:
    """metadata.labels as the Kubernetes API server checks them."""
    for key, value in values.items():
        prefix, _, name = key.rpartition("/")
        if prefix and (len(prefix) > 253 or not K8S_DNS1123_SUBDOMAIN.match(prefix)):
            check.error(f"{path}[{key}]", f"label key {key!r}: prefix {prefix!r} is not a DNS-1123 subdomain")
        problem = key_problem(name) if name else f"invalid label key {key!r}"
        problem = problem or value_problem(value)
        if problem:
            check.error(f"{path}[{key}]", problem)


def selector(check: Checker, path: str, values: Mapping[str, str]) -> None:
    """A workload selector's labels (Istio's validateWorkloadSelector).

    Istio rejects empty keys and `*`; a selector with no labels selects every workload of
    the namespace, which is legal but rarely meant, so it is a warning.  A key or value no
    Kubernetes label can have is a warning too: such a selector can never match.
    """
    if not values:
        check.warn(path, "workload selector without labels selects every workload in the namespace")
    for key, value in values.items():
        where = f"{path}[{key}]"
        if not key:
            check.error(where, f"empty key is not supported in a selector: {key}={value}")
        elif "*" in key or "*" in value:
            check.error(where, f"wildcard is not supported in a selector: {key}={value}")
        else:
            problem = key_problem(key) or value_problem(value)
            if problem:
                check.warn(where, f"{problem}: no workload can carry this label")
