"""RequestAuthentication rules (istio/istio pkg/config/validation ValidateRequestAuthentication)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from libs.config.validation import http, quantities, scope
from libs.config.validation._checker import Checker


def _jwks_uri(check: Checker, path: str, uri: str) -> None:
    """Istio's ParseJwksURI: an http(s) URL whose port, if any, is a number."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        check.error(path, f"jwksUri {uri!r} is not a valid URL: {exc}")
        return
    if parts.scheme not in ("http", "https"):
        check.error(path, f"jwksUri scheme {parts.scheme!r} is not supported (use http or https)")
    elif not parts.hostname:
        check.error(path, f"jwksUri {uri!r} has no host")


def _jwks(check: Checker, path: str, text: str) -> None:
    """An inline JSON Web Key, or a set of them under `keys`."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        check.error(path, f"jwks parse error: {exc}")
        return
    keys = document.get("keys", [document]) if isinstance(document, dict) else None
    if not isinstance(keys, list) or not all(isinstance(key, dict) and "kty" in key for key in keys):
        check.error(path, "jwks parse error: expected a JSON Web Key or a {\"keys\": [...]} set of them, each with kty")


def _jwt_rule(check: Checker, path: str, rule: dict[str, Any]) -> None:
    if not rule.get("issuer"):
        check.error(f"{path}.issuer", "issuer must be set")
    for i, audience in enumerate(rule.get("audiences", [])):
        if not audience:
            check.error(f"{path}.audiences[{i}]", "an audience must be a non-empty string")
    if rule.get("jwksUri"):
        _jwks_uri(check, f"{path}.jwksUri", rule["jwksUri"])
    if rule.get("jwks"):
        _jwks(check, f"{path}.jwks", rule["jwks"])
        if rule.get("jwksUri"):
            # The API says to use one of them; with both, jwksUri is silently ignored.
            check.error(path, "only one of jwks or jwksUri can be set")
    for i, header in enumerate(rule.get("fromHeaders", [])):
        # Envoy rejects a JWT header location that is not an HTTP header name.
        http.header_name(check, f"{path}.fromHeaders[{i}].name", header.get("name", ""))
    for field in ("fromParams", "fromCookies"):
        for i, name in enumerate(rule.get(field, [])):
            if not name:
                check.error(f"{path}.{field}[{i}]", "must be a non-empty string")
    for i, output in enumerate(rule.get("outputClaimToHeaders", [])):
        where = f"{path}.outputClaimToHeaders[{i}]"
        if not output.get("claim"):
            check.error(f"{where}.claim", "a claim is required")
        http.header_name(check, f"{where}.header", output.get("header", ""))
    if rule.get("outputPayloadToHeader"):
        http.header_name(check, f"{path}.outputPayloadToHeader", rule["outputPayloadToHeader"])
    if "timeout" in rule:
        quantities.duration(check, f"{path}.timeout", rule["timeout"])


def validate(spec: dict[str, Any], check: Checker) -> None:
    scope.policy_selection(check, spec)
    for i, rule in enumerate(spec.get("jwtRules", [])):
        _jwt_rule(check, f"spec.jwtRules[{i}]", rule)
