"""AuthorizationPolicy, PeerAuthentication and RequestAuthentication configs Istio rejects."""

from __future__ import annotations

import pytest

from tests.unit.config.cases import Case, assert_rejected, parse

AP, PA, RA = "AuthorizationPolicy", "PeerAuthentication", "RequestAuthentication"


def rule(body: str, action: str = "ALLOW") -> str:
    return f"{{action: {action}, rules: [{body}]}}"


def jwt(body: str) -> str:
    return f"{{jwtRules: [{{issuer: https://issuer.example.com, {body}}}]}}"


CASES = [
    # --- AuthorizationPolicy: action, provider, selection
    Case("ap-action-enum", AP, "{action: REJECT}", "spec.action", "is not one of ALLOW, DENY, AUDIT, CUSTOM"),
    Case("ap-deny-no-rules", AP, "{action: DENY}", "spec.rules", "DENY without rules never triggers"),
    Case("ap-custom-no-rules", AP, "{action: CUSTOM, provider: {name: ext}}", "spec.rules",
         "CUSTOM without rules"),
    Case("ap-custom-no-provider", AP, "{action: CUSTOM, rules: [{}]}", "spec.provider.name", "needs provider.name"),
    Case("ap-provider-with-allow", AP, "{action: ALLOW, provider: {name: ext}, rules: [{}]}", "spec.provider",
         "only allowed with action CUSTOM"),
    Case("ap-custom-principals", AP, "{action: CUSTOM, provider: {name: ext}, rules: [{from: [{source: "
                                     "{principals: [a]}}]}]}",
         "spec.rules[0].from[0].source.principals", "not supported with action CUSTOM"),
    Case("ap-custom-when-principal", AP, "{action: CUSTOM, provider: {name: ext}, rules: [{when: [{key: "
                                         "request.auth.principal, values: [a]}]}]}",
         "spec.rules[0].when[0].key", "not supported with action CUSTOM"),
    Case("ap-selector-and-target", AP, "{selector: {matchLabels: {app: a}}, targetRef: {kind: Service, name: a}}",
         "spec", "only one of selector, targetRef or targetRefs"),
    Case("ap-target-no-name", AP, "{targetRef: {kind: Service}}", "spec.targetRef.name", "must be set"),
    Case("ap-target-namespace", AP, "{targetRef: {kind: Service, name: a, namespace: other}}",
         "spec.targetRef.namespace", "cross-namespace"),
    Case("ap-target-kind", AP, "{targetRef: {group: apps, kind: Deployment, name: a}}", "spec.targetRef",
         "not apps/Deployment"),
    Case("ap-target-refs-kind", AP, "{targetRefs: [{kind: Gateway, name: a}]}", "spec.targetRefs[0]",
         "not core/Gateway"),
    Case("ap-selector-wildcard", AP, "{selector: {matchLabels: {app: 'web-*'}}}", "spec.selector.matchLabels[app]",
         "wildcard is not supported"),
    Case("ap-selector-unknown-field", AP, "{selector: {labels: {app: a}}}", "spec.selector.labels",
         "unknown field"),
    # --- rules: from / to
    Case("ap-from-empty", AP, rule("{from: []}"), "spec.rules[0].from", "must not be empty"),
    Case("ap-from-no-source", AP, rule("{from: [{}]}"), "spec.rules[0].from[0].source", "from.source is required"),
    Case("ap-source-empty", AP, rule("{from: [{source: {}}]}"), "spec.rules[0].from[0].source",
         "must not be empty"),
    Case("ap-ip-block", AP, rule("{from: [{source: {ipBlocks: [10.0.0.300]}}]}"),
         "spec.rules[0].from[0].source.ipBlocks[0]", "not a valid IP address"),
    Case("ap-remote-ip-cidr", AP, rule("{from: [{source: {notRemoteIpBlocks: [10.0.0.0/33]}}]}"),
         "spec.rules[0].from[0].source.notRemoteIpBlocks[0]", "not a valid CIDR block"),
    Case("ap-principal-empty", AP, rule("{from: [{source: {principals: ['']}}]}"),
         "spec.rules[0].from[0].source.principals[0]", "empty values are not allowed"),
    Case("ap-to-empty", AP, rule("{to: []}"), "spec.rules[0].to", "must not be empty"),
    Case("ap-to-no-operation", AP, rule("{to: [{}]}"), "spec.rules[0].to[0].operation", "to.operation is required"),
    Case("ap-operation-empty", AP, rule("{to: [{operation: {}}]}"), "spec.rules[0].to[0].operation",
         "must not be empty"),
    Case("ap-port-name", AP, rule("{to: [{operation: {ports: [http]}}]}"), "spec.rules[0].to[0].operation.ports[0]",
         "bad port 'http'"),
    Case("ap-port-range", AP, rule("{to: [{operation: {notPorts: ['70000']}}]}"),
         "spec.rules[0].to[0].operation.notPorts[0]", "0-65535"),
    Case("ap-port-number-type", AP, rule("{to: [{operation: {ports: [8080]}}]}"),
         "spec.rules[0].to[0].operation.ports[0]", "must be a string"),
    Case("ap-path-template", AP, rule("{to: [{operation: {paths: ['/api/{*}/{id}']}}]}"),
         "spec.rules[0].to[0].operation.paths[0]", "unsupported path template"),
    Case("ap-method-empty", AP, rule("{to: [{operation: {methods: ['']}}]}"),
         "spec.rules[0].to[0].operation.methods[0]", "empty values"),
    # --- rules: when
    Case("ap-when-no-key", AP, rule("{when: [{values: [a]}]}"), "spec.rules[0].when[0].key", "needs a key"),
    Case("ap-when-no-values", AP, rule("{when: [{key: source.ip}]}"), "spec.rules[0].when[0]",
         "at least one of values or notValues"),
    Case("ap-when-unknown-key", AP, rule("{when: [{key: request.path, values: [/a]}]}"), "spec.rules[0].when[0].key",
         "unknown attribute 'request.path'"),
    Case("ap-when-destination-labels", AP, rule("{when: [{key: 'destination.labels[app]', values: [a]}]}"),
         "spec.rules[0].when[0].key", "replaced by the policy's selector"),
    Case("ap-when-destination-namespace", AP, rule("{when: [{key: destination.namespace, values: [a]}]}"),
         "spec.rules[0].when[0].key", "replaced by the policy's own namespace"),
    Case("ap-when-header-no-name", AP, rule("{when: [{key: request.headers, values: [a]}]}"),
         "spec.rules[0].when[0].key", "should have the form name[item]"),
    Case("ap-when-claims-empty-item", AP, rule("{when: [{key: 'request.auth.claims[]', values: [a]}]}"),
         "spec.rules[0].when[0].key", "name[item]"),
    Case("ap-when-claims-trailing-text", AP, rule("{when: [{key: 'request.auth.claims[org]team', values: [a]}]}"),
         "spec.rules[0].when[0].key", "name[item]"),
    Case("ap-when-header-nested", AP, rule("{when: [{key: 'request.headers[a][b]', values: [a]}]}"),
         "spec.rules[0].when[0].key", "name[item]"),
    Case("ap-when-source-ip", AP, rule("{when: [{key: source.ip, values: [not-an-ip]}]}"),
         "spec.rules[0].when[0].values[0]", "not a valid IP address"),
    Case("ap-when-port", AP, rule("{when: [{key: destination.port, notValues: ['-1']}]}"),
         "spec.rules[0].when[0].notValues[0]", "bad port"),
    Case("ap-when-empty-value", AP, rule("{when: [{key: source.namespace, values: ['']}]}"),
         "spec.rules[0].when[0].values[0]", "empty values"),
    Case("ap-dry-run-audit", AP, "{action: AUDIT, rules: [{}]}", "metadata.annotations[istio.io/dry-run]",
         "only supports actions ALLOW and DENY", annotations={"istio.io/dry-run": "true"}),
    Case("ap-dry-run-value", AP, "{rules: [{}]}", "metadata.annotations[istio.io/dry-run]", "is not a boolean",
         annotations={"istio.io/dry-run": "maybe"}),
    # --- PeerAuthentication
    Case("pa-mode-enum", PA, "{mtls: {mode: REQUIRED}}", "spec.mtls.mode", "is not one of UNSET, DISABLE"),
    Case("pa-port-level-no-selector", PA, "{portLevelMtls: {8080: {mode: DISABLE}}}", "spec.portLevelMtls",
         "cannot have port level mTLS"),
    Case("pa-port-level-empty", PA, "{selector: {matchLabels: {app: a}}, portLevelMtls: {}}", "spec.portLevelMtls",
         "needs at least one port"),
    Case("pa-port-zero", PA, "{selector: {matchLabels: {app: a}}, portLevelMtls: {0: {mode: DISABLE}}}",
         "spec.portLevelMtls[0]", "1-65535"),
    Case("pa-port-high", PA, "{selector: {matchLabels: {app: a}}, portLevelMtls: {'70000': {mode: STRICT}}}",
         "spec.portLevelMtls[70000]", "1-65535"),
    Case("pa-port-name", PA, "{selector: {matchLabels: {app: a}}, portLevelMtls: {http: {mode: STRICT}}}",
         "spec.portLevelMtls", "map key 'http' must be a non-negative integer"),
    Case("pa-selector-wildcard", PA, "{selector: {matchLabels: {'*': a}}}", "spec.selector.matchLabels[*]",
         "wildcard"),
    Case("pa-target-ref", PA, "{targetRef: {kind: Service, name: a}}", "spec.targetRef", "unknown field"),
    # --- RequestAuthentication
    Case("ra-no-issuer", RA, "{jwtRules: [{jwksUri: 'https://a.com/jwks'}]}", "spec.jwtRules[0].issuer",
         "issuer must be set"),
    Case("ra-jwks-uri-scheme", RA, jwt("jwksUri: 'ftp://a.com/jwks'"), "spec.jwtRules[0].jwksUri",
         "scheme 'ftp' is not supported"),
    Case("ra-jwks-uri-port", RA, jwt("jwksUri: 'https://a.com:port/jwks'"), "spec.jwtRules[0].jwksUri",
         "not a valid URL"),
    Case("ra-jwks-uri-no-host", RA, jwt("jwksUri: 'https:///jwks'"), "spec.jwtRules[0].jwksUri", "has no host"),
    Case("ra-jwks-json", RA, jwt("jwks: '{not json'"), "spec.jwtRules[0].jwks", "jwks parse error"),
    Case("ra-jwks-no-kty", RA, jwt("jwks: '{\"keys\": [{\"n\": \"abc\"}]}'"), "spec.jwtRules[0].jwks", "with kty"),
    Case("ra-jwks-and-uri", RA, jwt("jwksUri: 'https://a.com/jwks', jwks: '{\"keys\": [{\"kty\": \"RSA\"}]}'"),
         "spec.jwtRules[0]", "only one of jwks or jwksUri"),
    Case("ra-from-header-empty", RA, jwt("fromHeaders: [{prefix: 'Bearer '}]"), "spec.jwtRules[0].fromHeaders[0].name",
         "cannot be empty"),
    Case("ra-from-header-name", RA, jwt("fromHeaders: [{name: 'x token'}]"), "spec.jwtRules[0].fromHeaders[0].name",
         "not a valid header name"),
    Case("ra-from-params", RA, jwt("fromParams: ['']"), "spec.jwtRules[0].fromParams[0]", "non-empty"),
    Case("ra-from-cookies", RA, jwt("fromCookies: ['']"), "spec.jwtRules[0].fromCookies[0]", "non-empty"),
    Case("ra-audience", RA, jwt("audiences: ['']"), "spec.jwtRules[0].audiences[0]", "non-empty"),
    Case("ra-claim-header", RA, jwt("outputClaimToHeaders: [{header: 'x:sub', claim: sub}]"),
         "spec.jwtRules[0].outputClaimToHeaders[0].header", "not a valid header name"),
    Case("ra-claim-missing", RA, jwt("outputClaimToHeaders: [{header: x-sub}]"),
         "spec.jwtRules[0].outputClaimToHeaders[0].claim", "a claim is required"),
    Case("ra-payload-header", RA, jwt("outputPayloadToHeader: 'x payload'"),
         "spec.jwtRules[0].outputPayloadToHeader", "not a valid header name"),
    Case("ra-timeout", RA, jwt("timeout: 0s"), "spec.jwtRules[0].timeout", "at least 1ms"),
    Case("ra-selector-and-refs", RA, "{selector: {matchLabels: {app: a}}, targetRefs: [{kind: Service, name: a}]}",
         "spec", "only one of selector, targetRef or targetRefs"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_rejected(case: Case) -> None:
    assert_rejected(case)


def test_nested_jwt_claims_are_accepted() -> None:
    """Istio reads `request.auth.claims[org][team]` as the claim `team` inside `org`."""
    result = parse(AP, rule("{when: [{key: 'request.auth.claims[org][team]', values: [blue]}]}"))
    assert result.errors() == []
