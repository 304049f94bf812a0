"""One AuthorizationPolicy rule as an Envoy RBAC policy (Istio's authz model).

A rule is `from` (who), `to` (what) and `when` (conditions).  Envoy's RBAC policy is
permissions (what) and principals (who): a request matches when any permission and any
principal match.  So each `to` operation becomes one permission and each `from` source one
principal, and every `when` condition is ANDed into all of them, on whichever side its
attribute belongs.  Within one field, the values are ORed and the `not` values are one
NOT(OR); different fields AND.

On TCP, HTTP attributes (paths, methods, hosts, headers, JWT claims) do not exist:
`HttpOnly` is raised, and the caller follows Istio's rule, which never lets a policy grant
more than it says: an ALLOW rule that needs them is dropped whole (it can never match),
while DENY and AUDIT rules drop just those fields (so they match more, never less).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from envoy.config.core.v3 import extension_pb2
from envoy.config.rbac.v3 import rbac_pb2
from envoy.config.rbac.v3.rbac_pb2 import Permission, Principal
from envoy.extensions.path.match.uri_template.v3 import uri_template_match_pb2
from envoy.type.matcher.v3 import metadata_pb2, value_pb2

from libs.envoy import pack
from services.pilot.networking import authz_matchers as m

URI_TEMPLATE = "envoy.path.match.uri_template.uri_template_matcher"


class HttpOnly(ValueError):
    """An attribute that only HTTP requests have, asked for on a TCP filter."""


@dataclass(frozen=True)
class RuleContext:
    tcp: bool
    # ALLOW drops a rule it cannot build; DENY and AUDIT drop only the unbuildable field.
    strict: bool
    # The policy's namespace: the default for `serviceAccounts` values without one.
    namespace: str





def _http_only(key: str, ctx: RuleContext) -> None:
    if ctx.tcp:
        raise HttpOnly(f"{key} is HTTP only")


def _authenticated(matcher: Any) -> Principal:
    return Principal(authenticated=Principal.Authenticated(principal_name=matcher))


def _metadata_principal(matcher: metadata_pb2.MetadataMatcher) -> Principal:
    return Principal(metadata=matcher)


# --- who: one Principal per value --------------------------------------------------------

def _principal_for(key: str, value: str, ctx: RuleContext) -> Principal:
    if key in ("principals", "source.principal"):
        return _authenticated(m.string(value, prefix=m.SPIFFE_PREFIX))
    if key in ("namespaces", "source.namespace"):
        return _authenticated(m.regex(m.namespace_regex(value)))
    if key in ("serviceAccounts", "source.serviceAccount"):
        return _authenticated(m.regex(m.service_account_regex(value, ctx.namespace)))
    if key == "trustDomains":
        return _authenticated(m.string(value if value == "*" else f"{value}/*", prefix=m.SPIFFE_PREFIX))
    if key in ("ipBlocks", "source.ip"):
        return Principal(direct_remote_ip=m.cidr(value))
    if key in ("remoteIpBlocks", "remote.ip"):
        return Principal(remote_ip=m.cidr(value))
    _http_only(key, ctx)
    if key in ("requestPrincipals", "request.auth.principal"):
        issuer, subject = m.request_principal(value)
        return Principal(and_ids=Principal.Set(ids=[
            _metadata_principal(m.jwt_claim_string("iss", issuer)),
            _metadata_principal(m.jwt_claim_string("sub", subject))]))
    if key == "request.auth.audiences":
        return _metadata_principal(m.jwt_claim(["aud"], [value]))
    if key == "request.auth.presenter":
        return _metadata_principal(m.jwt_claim(["azp"], [value]))
    if key.startswith("request.auth.claims["):
        return _metadata_principal(m.jwt_claim(claim_path(key), [value]))
    if key.startswith("request.headers["):
        return Principal(header=m.header(_bracketed(key), value))
    raise ValueError(f"unknown attribute {key!r}")


def _principal_field(key: str, values: list[str], not_values: list[str], ctx: RuleContext) -> list[Principal]:
    out: list[Principal] = []
    if values:
        out.append(Principal(or_ids=Principal.Set(ids=[_principal_for(key, v, ctx) for v in values])))
    if not_values:
        out.append(Principal(not_id=Principal(or_ids=Principal.Set(
            ids=[_principal_for(key, v, ctx) for v in not_values]))))
    return out


# --- what: one Permission per value ------------------------------------------------------

def _permission_for(key: str, value: str, ctx: RuleContext) -> Permission:
    if key in ("ports", "destination.port"):
        return Permission(destination_port=int(value))
    if key == "destination.ip":
        return Permission(destination_ip=m.cidr(value))
    if key == "connection.sni":
        return Permission(requested_server_name=m.string(value))
    if key.startswith("experimental.envoy.filters."):
        filter_name, _, item = key.removeprefix("experimental.")[:-1].partition("[")
        if value.startswith("[") and value.endswith("]"):
            return Permission(metadata=m.metadata(filter_name, [item], m.string_or_list([value[1:-1]])))
        return Permission(metadata=m.metadata(filter_name, [item], value_pb2.ValueMatcher(
            string_match=m.string(value))))
    _http_only(key, ctx)
    if key == "hosts":
        return Permission(header=m.header(":authority", value, ignore_case=True))
    if key == "methods":
        return Permission(header=m.header(":method", value))
    if key == "paths":
        if m.is_path_template(value):
            template = uri_template_match_pb2.UriTemplateMatchConfig(path_template=m.path_template(value))
            return Permission(uri_template=extension_pb2.TypedExtensionConfig(name=URI_TEMPLATE,
                                                                              typed_config=pack(template)))
        return Permission(url_path=m.path(value))
    raise ValueError(f"unknown attribute {key!r}")


def _permission_field(key: str, values: list[str], not_values: list[str], ctx: RuleContext) -> list[Permission]:
    out: list[Permission] = []
    if values:
        out.append(Permission(or_rules=Permission.Set(rules=[_permission_for(key, v, ctx) for v in values])))
    if not_values:
        out.append(Permission(not_rule=Permission(or_rules=Permission.Set(
            rules=[_permission_for(key, v, ctx) for v in not_values]))))
    return out


# --- the rule ----------------------------------------------------------------------------

_PERMISSION_KEYS = ("destination.ip", "destination.port", "connection.sni")
_SOURCE_FIELDS = (("principals", "notPrincipals"), ("requestPrincipals", "notRequestPrincipals"),
                  ("namespaces", "notNamespaces"), ("serviceAccounts", "notServiceAccounts"),
                  ("trustDomains", "notTrustDomains"), ("remoteIpBlocks", "notRemoteIpBlocks"),
                  ("ipBlocks", "notIpBlocks"))
_OPERATION_FIELDS = (("hosts", "notHosts"), ("methods", "notMethods"), ("paths", "notPaths"),
                     ("ports", "notPorts"))

Field = tuple[str, list[str], list[str]]


def _is_permission_key(key: str) -> bool:
    return key in _PERMISSION_KEYS or key.startswith("experimental.envoy.filters.")


def _build(fields: list[Field], ctx: RuleContext, one: Callable[[str, list[str], list[str], RuleContext], list[Any]],
           ) -> list[Any]:
    """AND of every field's matchers; a field the filter cannot check is dropped (DENY,
    AUDIT) or fails the rule (ALLOW)."""
    out: list[Any] = []
    for key, values, not_values in fields:
        try:
            out.extend(one(key, values, not_values, ctx))
        except HttpOnly:
            if ctx.strict:
                raise
    return out


def _fields(body: dict[str, Any], names: tuple[tuple[str, str], ...]) -> list[Field]:
    return [(positive, body.get(positive, []), body.get(negative, [])) for positive, negative in names
            if body.get(positive) or body.get(negative)]


def rule_policy(rule: dict[str, Any], ctx: RuleContext) -> rbac_pb2.Policy:
    """The RBAC policy for one rule; raises `HttpOnly` for an ALLOW rule a TCP filter
    cannot check."""
    conditions = [(c["key"], c.get("values", []), c.get("notValues", [])) for c in rule.get("when", [])]
    permission_when = [c for c in conditions if _is_permission_key(c[0])]
    principal_when = [c for c in conditions if not _is_permission_key(c[0])]
    sources = [entry.get("source", {}) for entry in rule.get("from", [])] or [{}]
    operations = [entry.get("operation", {}) for entry in rule.get("to", [])] or [{}]
    policy = rbac_pb2.Policy()
    for operation in operations:
        matchers = _build(_fields(operation, _OPERATION_FIELDS) + permission_when, ctx, _permission_field)
        policy.permissions.append(Permission(and_rules=Permission.Set(rules=matchers or [Permission(any=True)])))
    for source in sources:
        matchers = _build(_fields(source, _SOURCE_FIELDS) + principal_when, ctx, _principal_field)
        policy.principals.append(Principal(and_ids=Principal.Set(ids=matchers or [Principal(any=True)])))
    return policy


def _bracketed(key: str) -> str:
    return key[key.index("[") + 1:-1]


def claim_path(key: str) -> list[str]:
    """`request.auth.claims[a][b]` -> [a, b] (nested claims), `request.auth.claims[a]` -> [a]."""
    body = key.removeprefix("request.auth.claims")
    return [part for part in body.strip("[]").split("][")]
