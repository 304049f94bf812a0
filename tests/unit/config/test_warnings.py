"""Configs Istio accepts with a warning (or that are legal but suspicious): accepted, and
the warning names the field."""

from __future__ import annotations

import pytest

from libs.config import warnings_of
from tests.unit.config.cases import Case, parse

ROUTE = "route: [{destination: {host: a}}]"

CASES = [
    Case("single-weight", "VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a}, weight: 50}]}]}",
         "spec.http[0].route[0].weight", "receives all traffic"),
    Case("websocket-upgrade", "VirtualService", f"{{hosts: [a], http: [{{{ROUTE}, websocketUpgrade: true}}]}}",
         "spec.http[0].websocketUpgrade", "removed from Istio's API"),
    Case("unreachable-rule", "VirtualService", f"{{hosts: [a], http: [{{{ROUTE}}}, {{{ROUTE}}}]}}",
         "spec.http[1]", "only the last rule can have no matches"),
    Case("duplicate-match", "VirtualService",
         f"{{hosts: [a], http: [{{match: [{{uri: {{exact: /a}}}}], {ROUTE}}}, "
         f"{{match: [{{name: x, uri: {{exact: /a}}}}], {ROUTE}}}]}}",
         "spec.http[1].match[0]", "same as a match of rule 0"),
    Case("empty-string-match", "VirtualService", f"{{hosts: [a], http: [{{match: [{{uri: {{}}}}], {ROUTE}}}]}}",
         "spec.http[0].match[0].uri", "matches everything"),
    Case("upper-case-header", "VirtualService",
         f"{{hosts: [a], http: [{{match: [{{headers: {{X-User: {{exact: a}}}}}}], {ROUTE}}}]}}",
         "spec.http[0].match[0].headers[X-User]", "lower case"),
    Case("abort-without-type", "VirtualService",
         f"{{hosts: [a], http: [{{{ROUTE}, fault: {{abort: {{percentage: {{value: 5}}}}}}}}]}}",
         "spec.http[0].fault.abort", "aborts nothing"),
    Case("delay-without-type", "VirtualService",
         f"{{hosts: [a], http: [{{{ROUTE}, fault: {{delay: {{percentage: {{value: 5}}}}}}}}]}}",
         "spec.http[0].fault.delay", "injects nothing"),
    Case("redirect-code-unsupported", "VirtualService",
         "{hosts: [a], http: [{redirect: {uri: /b, redirectCode: 305}}]}",
         "spec.http[0].redirect.redirectCode", "not supported by Envoy"),
    Case("mirror-percent-deprecated", "VirtualService",
         f"{{hosts: [a], http: [{{{ROUTE}, mirror: {{host: b}}, mirrorPercent: 5}}]}}",
         "spec.http[0].mirrorPercent", "deprecated"),
    Case("legacy-gateway-name", "VirtualService", f"{{hosts: [a], gateways: [gw.ns], http: [{{{ROUTE}}}]}}",
         "spec.gateways[0]", "prefer namespace/name"),
    Case("sni-ip", "VirtualService",
         "{hosts: ['*'], gateways: [gw], tls: [{match: [{sniHosts: [10.0.0.1]}], route: [{destination: {host: a}}]}]}",
         "spec.tls[0].match[0].sniHosts[0]", "IP address"),
    Case("consecutive-errors", "DestinationRule",
         "{host: a, trafficPolicy: {outlierDetection: {consecutiveErrors: 5}}}",
         "spec.trafficPolicy.outlierDetection.consecutiveErrors", "deprecated"),
    Case("failover-without-outlier", "DestinationRule",
         "{host: a, trafficPolicy: {loadBalancer: {localityLbSetting: {failover: [{from: us, to: eu}]}}}}",
         "spec.trafficPolicy.loadBalancer.localityLbSetting", "needs an outlierDetection"),
    Case("empty-selector", "DestinationRule", "{host: a, workloadSelector: {}}",
         "spec.workloadSelector.matchLabels", "selects every workload"),
    Case("passthrough-certificates", "Gateway",
         "{servers: [{port: {number: 443, name: tls, protocol: TLS}, hosts: [a.com], tls: {mode: PASSTHROUGH, "
         "credentialName: c}}]}", "spec.servers[0].tls", "does not use certificates"),
    Case("unknown-cipher", "Gateway",
         "{servers: [{port: {number: 443, name: https, protocol: HTTPS}, hosts: [a.com], tls: {mode: SIMPLE, "
         "credentialName: c, cipherSuites: [ECDHE-FOO]}}]}", "spec.servers[0].tls.cipherSuites[0]", "unknown cipher"),
    Case("https-redirect-on-tls", "Gateway",
         "{servers: [{port: {number: 443, name: https, protocol: HTTPS}, hosts: [a.com], tls: {mode: SIMPLE, "
         "credentialName: c, httpsRedirect: true}}]}", "spec.servers[0].tls.httpsRedirect", "only applies to HTTP"),
    Case("old-tls-without-ciphers", "Gateway",
         "{servers: [{port: {number: 443, name: https, protocol: HTTPS}, hosts: [a.com], tls: {mode: SIMPLE, "
         "credentialName: c, minProtocolVersion: TLSV1_0}}]}",
         "spec.servers[0].tls.minProtocolVersion", "cipherSuites"),
    Case("static-without-endpoints", "ServiceEntry",
         "{hosts: [a.com], resolution: STATIC, ports: [{number: 80, name: http}]}", "spec.endpoints",
         "has no endpoints"),
    Case("partial-wildcard", "ServiceEntry", "{hosts: ['*a.com'], ports: [{number: 80, name: http}]}",
         "spec.hosts[0]", "partial wildcard"),
    Case("target-port-none", "ServiceEntry",
         "{hosts: [a.com], ports: [{number: 80, name: http, targetPort: 8080}]}", "spec.ports[0].targetPort",
         "no effect with resolution NONE"),
    Case("selector-with-dns", "ServiceEntry",
         "{hosts: [a.com], resolution: DNS, workloadSelector: {labels: {app: a}}, ports: [{number: 80, name: h}]}",
         "spec.workloadSelector", "no effect with resolution DNS"),
    Case("duplicated-egress-host", "Sidecar", "{egress: [{hosts: ['ns/*', ns/a.com]}]}", "spec.egress[0].hosts[1]",
         "duplicated egress host"),
    Case("http-pool-on-tcp", "Sidecar",
         "{ingress: [{port: {number: 9000, protocol: TCP, name: t}, connectionPool: {http: {maxRetries: 1}}}]}",
         "spec.ingress[0].connectionPool.http", "only the TCP settings apply"),
    Case("network-only-endpoint", "WorkloadEntry", "{network: vpc-1}", "spec.address", "reached through the gateway"),
    Case("literal-star", "AuthorizationPolicy", "{rules: [{from: [{source: {principals: ['a*b']}}]}]}",
         "spec.rules[0].from[0].source.principals[0]", "matches literally"),
    Case("lower-case-method", "AuthorizationPolicy", "{rules: [{to: [{operation: {methods: [get]}}]}]}",
         "spec.rules[0].to[0].operation.methods[0]", "case-sensitive"),
    Case("deny-http-only", "AuthorizationPolicy", "{action: DENY, rules: [{to: [{operation: {paths: [/admin]}}]}]}",
         "spec.rules[0]", "denies all traffic to TCP ports"),
    Case("unlabelled-selector-key", "PeerAuthentication", "{selector: {matchLabels: {'a b': c}}}",
         "spec.selector.matchLabels[a b]", "no workload can carry this label"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_accepted_with_warning(case: Case) -> None:
    result = parse(case.kind, case.spec, name=case.name)
    assert result.ok, result.errors()
    (_, resource), = result.resources
    matching = [w for w in warnings_of(resource) if w.path == case.path and case.reason in w.reason]
    assert matching, f"{case.id}: no warning at {case.path} with {case.reason!r} among {warnings_of(resource)}"
