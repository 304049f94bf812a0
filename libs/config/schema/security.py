"""Schemas of security.istio.io (v1beta1 and v1 share one shape).

Field names and types follow istio/api's security/v1beta1/{authorization_policy,
peer_authentication,request_authentication}.proto and the generated CRD schema.
"""

from __future__ import annotations

from libs.config.schema._types import BOOL, DURATION, STRING, Enum, ListOf, MapOf, Message, SchemaType
from libs.config.schema.istio_type import MATCH_LABELS_SELECTOR, POLICY_TARGET_REFERENCE

STRINGS = ListOf(STRING)

# Every policy kind selects its workloads the same three ways; validation checks that at
# most one is used.
_SELECTION: dict[str, SchemaType] = {
    "selector": MATCH_LABELS_SELECTOR,
    "targetRef": POLICY_TARGET_REFERENCE,
    "targetRefs": ListOf(POLICY_TARGET_REFERENCE),
}

# --- AuthorizationPolicy ------------------------------------------------------------------

SOURCE = Message("Source", {
    "principals": STRINGS,
    "notPrincipals": STRINGS,
    "requestPrincipals": STRINGS,
    "notRequestPrincipals": STRINGS,
    "namespaces": STRINGS,
    "notNamespaces": STRINGS,
    "serviceAccounts": STRINGS,
    "notServiceAccounts": STRINGS,
    "trustDomains": STRINGS,
    "notTrustDomains": STRINGS,
    "ipBlocks": STRINGS,
    "notIpBlocks": STRINGS,
    "remoteIpBlocks": STRINGS,
    "notRemoteIpBlocks": STRINGS,
})
OPERATION = Message("Operation", {
    "hosts": STRINGS,
    "notHosts": STRINGS,
    "ports": STRINGS,
    "notPorts": STRINGS,
    "methods": STRINGS,
    "notMethods": STRINGS,
    "paths": STRINGS,
    "notPaths": STRINGS,
})
CONDITION = Message("Condition", {"key": STRING, "values": STRINGS, "notValues": STRINGS})
RULE = Message("Rule", {
    "from": ListOf(Message("Rule.From", {"source": SOURCE})),
    "to": ListOf(Message("Rule.To", {"operation": OPERATION})),
    "when": ListOf(CONDITION),
})
AUTHORIZATION_POLICY = Message("AuthorizationPolicy", {
    **_SELECTION,
    "rules": ListOf(RULE),
    "action": Enum("AuthorizationPolicy.Action", ("ALLOW", "DENY", "AUDIT", "CUSTOM")),
    "provider": Message("AuthorizationPolicy.ExtensionProvider", {"name": STRING}),
})

# --- PeerAuthentication -------------------------------------------------------------------

MUTUAL_TLS = Message("PeerAuthentication.MutualTLS", {
    "mode": Enum("PeerAuthentication.MutualTLS.Mode", ("UNSET", "DISABLE", "PERMISSIVE", "STRICT")),
})
PEER_AUTHENTICATION = Message("PeerAuthentication", {
    "selector": MATCH_LABELS_SELECTOR,
    "mtls": MUTUAL_TLS,
    # map<uint32, MutualTLS>: keys are port numbers, written as YAML numbers or strings.
    "portLevelMtls": MapOf(MUTUAL_TLS, key="uint32"),
})

# --- RequestAuthentication ----------------------------------------------------------------

JWT_RULE = Message("JWTRule", {
    "issuer": STRING,
    "audiences": STRINGS,
    "jwksUri": STRING,
    "jwks": STRING,
    "fromHeaders": ListOf(Message("JWTHeader", {"name": STRING, "prefix": STRING})),
    "fromParams": STRINGS,
    "fromCookies": STRINGS,
    "outputPayloadToHeader": STRING,
    "forwardOriginalToken": BOOL,
    "outputClaimToHeaders": ListOf(Message("ClaimToHeader", {"header": STRING, "claim": STRING})),
    "spaceDelimitedClaims": STRINGS,
    "timeout": DURATION,
})
REQUEST_AUTHENTICATION = Message("RequestAuthentication", {**_SELECTION, "jwtRules": ListOf(JWT_RULE)})
