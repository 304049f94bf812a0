"""Istio's value syntax for AuthorizationPolicy, as Envoy matchers.

A value is exact, `prefix*`, `*suffix`, or `*` (present: any non-empty value).  Hosts
compare case-insensitively; principals carry the `spiffe://` prefix Envoy sees in peer
certificates; JWT claims live in the jwt_authn filter's dynamic metadata under `payload`.
"""

from __future__ import annotations

import ipaddress
import re

from envoy.config.core.v3 import address_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.type.matcher.v3 import metadata_pb2, path_pb2, regex_pb2, string_pb2, value_pb2
from google.protobuf import wrappers_pb2

SPIFFE_PREFIX = "spiffe://"
JWT_FILTER = "envoy.filters.http.jwt_authn"
# Where jwt_authn writes a verified token's claims (its `payload_in_metadata`).
JWT_PAYLOAD = "payload"


def regex(pattern: str) -> string_pb2.StringMatcher:
    return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=pattern))


ANY_VALUE = ".+"


def string(value: str, *, prefix: str = "", ignore_case: bool = False) -> string_pb2.StringMatcher:
    """`value` in Istio's syntax, with `prefix` (e.g. `spiffe://`) in front of what it matches."""
    if value == "*":
        return regex(ANY_VALUE)
    if value.startswith("*"):
        if prefix:
            return regex(re.escape(prefix) + ".*" + re.escape(value[1:]))
        return string_pb2.StringMatcher(suffix=value[1:], ignore_case=ignore_case)
    if value.endswith("*"):
        return string_pb2.StringMatcher(prefix=prefix + value[:-1], ignore_case=ignore_case)
    return string_pb2.StringMatcher(exact=prefix + value, ignore_case=ignore_case)


def header(name: str, value: str, *, ignore_case: bool = False) -> rc.HeaderMatcher:
    """A header matcher; `*` is presence (an empty prefix or suffix is not allowed)."""
    if value == "*":
        return rc.HeaderMatcher(name=name, present_match=True)
    return rc.HeaderMatcher(name=name, string_match=string(value, ignore_case=ignore_case))


def path(value: str) -> path_pb2.PathMatcher:
    """The request path without its query string."""
    return path_pb2.PathMatcher(path=string(value))


def path_template(value: str) -> str:
    """Istio's `{*}` / `{**}` path segments in Envoy's uri_template syntax."""
    return value.replace("{**}", "**").replace("{*}", "*")


def is_path_template(value: str) -> bool:
    return "{*}" in value or "{**}" in value


def cidr(value: str) -> address_pb2.CidrRange:
    network = ipaddress.ip_network(value, strict=False)
    return address_pb2.CidrRange(address_prefix=str(network.network_address),
                                 prefix_len=wrappers_pb2.UInt32Value(value=network.prefixlen))


def metadata(filter_name: str, keys: list[str], value: value_pb2.ValueMatcher) -> metadata_pb2.MetadataMatcher:
    return metadata_pb2.MetadataMatcher(
        filter=filter_name, path=[metadata_pb2.MetadataMatcher.PathSegment(key=key) for key in keys], value=value)


def string_or_list(values: list[str]) -> value_pb2.ValueMatcher:
    """Any of `values`, as a string or as one element of a list: a JWT claim may be either
    (`aud: "a"` or `aud: ["a", "b"]`), and Envoy's list matcher never matches a string."""
    alternatives: list[value_pb2.ValueMatcher] = []
    for value in values:
        one = value_pb2.ValueMatcher(string_match=string(value))
        alternatives.append(one)
        alternatives.append(value_pb2.ValueMatcher(list_match=value_pb2.ListMatcher(one_of=one)))
    return value_pb2.ValueMatcher(or_match=value_pb2.OrMatcher(value_matchers=alternatives))


def jwt_claim(keys: list[str], values: list[str]) -> metadata_pb2.MetadataMatcher:
    """A (possibly nested) claim of the verified token holds one of `values`."""
    return metadata(JWT_FILTER, [JWT_PAYLOAD, *keys], string_or_list(values))


def jwt_claim_string(claim: str, matcher: string_pb2.StringMatcher) -> metadata_pb2.MetadataMatcher:
    return metadata(JWT_FILTER, [JWT_PAYLOAD, claim], value_pb2.ValueMatcher(string_match=matcher))


def request_principal(value: str) -> tuple[string_pb2.StringMatcher, string_pb2.StringMatcher]:
    """(issuer, subject) matchers for a request principal `<iss>/<sub>`.

    The issuer may itself be a URL, so the subject is what follows the last `/`; a `*`
    on either side of the value widens that side, as Istio reads it."""
    slash = value.rfind("/")
    found = slash >= 0
    issuer, subject = (value[:slash], value[slash + 1:]) if found else (value, "")
    anything = regex(ANY_VALUE)
    if value == "*":
        return anything, anything
    if value.startswith("*"):
        if not found:
            return anything, string_pb2.StringMatcher(suffix=value[1:])
        return (anything if issuer == "*" else string_pb2.StringMatcher(suffix=issuer[1:]),
                string_pb2.StringMatcher(exact=subject))
    if value.endswith("*"):
        if not found:
            return string_pb2.StringMatcher(prefix=value[:-1]), anything
        return (string_pb2.StringMatcher(exact=issuer),
                anything if subject == "*" else string_pb2.StringMatcher(prefix=subject[:-1]))
    return string_pb2.StringMatcher(exact=issuer), string_pb2.StringMatcher(exact=subject)


def service_account_regex(value: str, default_namespace: str) -> str:
    """`[<namespace>/]<name>`: that account's SPIFFE id in any trust domain."""
    namespace, slash, name = value.partition("/")
    if not slash:
        namespace, name = default_namespace, value
    return f"spiffe://.+/ns/{re.escape(namespace)}/(.+/|)sa/{re.escape(name)}(/.+)?"


def namespace_regex(value: str) -> str:
    return f".*/ns/{'.*'.join(re.escape(part) for part in value.split('*'))}/.*"
