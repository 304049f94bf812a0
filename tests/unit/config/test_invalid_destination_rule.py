"""DestinationRule configs Istio rejects: each row names the field and the reason."""

from __future__ import annotations

import pytest

from tests.unit.config.cases import Case, assert_rejected

DR = "DestinationRule"


def policy(body: str) -> str:
    return f"{{host: reviews, trafficPolicy: {body}}}"


CASES = [
    Case("host-missing", DR, "{subsets: [{name: v1}]}", "spec.host", "empty domain name"),
    Case("host-invalid", DR, "{host: 'foo bar'}", "spec.host", "is not a DNS-1123 label"),
    Case("host-partial-star-later", DR, "{host: 'a.*.com'}", "spec.host", "is not a DNS-1123 label"),
    Case("subset-duplicate", DR, "{host: a, subsets: [{name: v1}, {name: v1}]}", "spec.subsets[1].name",
         "duplicate subset name"),
    Case("subset-name-dot", DR, "{host: a, subsets: [{name: v.1}]}", "spec.subsets[0].name", "invalid subset name"),
    Case("subset-name-missing", DR, "{host: a, subsets: [{labels: {v: '1'}}]}", "spec.subsets[0].name",
         "cannot be empty"),
    Case("subset-label-value", DR, "{host: a, subsets: [{name: v1, labels: {version: 'v 1'}}]}",
         "spec.subsets[0].labels[version]", "invalid label value"),
    Case("subset-label-key-long", DR, "{host: a, subsets: [{name: v1, labels: {" + "k" * 64 + ": v}}]}",
         "spec.subsets[0].labels[" + "k" * 64 + "]", "longer than 63"),
    Case("subset-policy", DR, "{host: a, subsets: [{name: v1, trafficPolicy: {connectionPool: {tcp: "
         "{maxConnections: -1}}}}]}", "spec.subsets[0].trafficPolicy.connectionPool.tcp.maxConnections",
         "must not be negative"),
    Case("policy-empty", DR, policy("{}"), "spec.trafficPolicy", "at least one field"),
    Case("tunnel-and-proxy-protocol", DR, policy("{tunnel: {targetHost: a.com, targetPort: 8443}, "
                                                 "proxyProtocol: {version: V2}}"),
         "spec.trafficPolicy", "tunnel and proxyProtocol"),
    Case("tunnel-protocol", DR, policy("{tunnel: {protocol: GET, targetHost: a.com, targetPort: 1}}"),
         "spec.trafficPolicy.tunnel.protocol", "CONNECT"),
    Case("tunnel-target-host", DR, policy("{tunnel: {targetHost: 'a b', targetPort: 1}}"),
         "spec.trafficPolicy.tunnel.targetHost", "FQDN or an IP address"),
    Case("tunnel-target-port", DR, policy("{tunnel: {targetHost: 10.0.0.1}}"),
         "spec.trafficPolicy.tunnel.targetPort", "1-65535"),
    Case("outlier-interval", DR, policy("{outlierDetection: {interval: 0s}}"),
         "spec.trafficPolicy.outlierDetection.interval", "at least 1ms"),
    Case("outlier-ejection-time", DR, policy("{outlierDetection: {baseEjectionTime: 500us}}"),
         "spec.trafficPolicy.outlierDetection.baseEjectionTime", "at least 1ms"),
    Case("outlier-ejection-percent", DR, policy("{outlierDetection: {maxEjectionPercent: 120}}"),
         "spec.trafficPolicy.outlierDetection.maxEjectionPercent", "0-100"),
    Case("outlier-health-percent", DR, policy("{outlierDetection: {minHealthPercent: -1}}"),
         "spec.trafficPolicy.outlierDetection.minHealthPercent", "0-100"),
    Case("outlier-local-origin", DR, policy("{outlierDetection: {consecutiveLocalOriginFailures: 3}}"),
         "spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures", "splitExternalLocalOriginErrors"),
    Case("outlier-error-codes", DR, policy("{outlierDetection: {outlierDetectionHttpErrorCodes: [503, 700]}}"),
         "spec.trafficPolicy.outlierDetection.outlierDetectionHttpErrorCodes[1]", "100-599"),
    Case("pool-empty", DR, policy("{connectionPool: {}}"), "spec.trafficPolicy.connectionPool",
         "at least one field"),
    Case("connect-timeout", DR, policy("{connectionPool: {tcp: {connectTimeout: 0s}}}"),
         "spec.trafficPolicy.connectionPool.tcp.connectTimeout", "at least 1ms"),
    Case("max-connection-duration", DR, policy("{connectionPool: {tcp: {maxConnectionDuration: 0.1ms}}}"),
         "spec.trafficPolicy.connectionPool.tcp.maxConnectionDuration", "at least 1ms"),
    Case("keepalive-time", DR, policy("{connectionPool: {tcp: {tcpKeepalive: {time: 0s}}}}"),
         "spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.time", "at least 1ms"),
    Case("pending-requests", DR, policy("{connectionPool: {http: {http1MaxPendingRequests: -1}}}"),
         "spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests", "must not be negative"),
    Case("max-retries", DR, policy("{connectionPool: {http: {maxRetries: -3}}}"),
         "spec.trafficPolicy.connectionPool.http.maxRetries", "must not be negative"),
    Case("http-idle-timeout", DR, policy("{connectionPool: {http: {idleTimeout: 0s}}}"),
         "spec.trafficPolicy.connectionPool.http.idleTimeout", "at least 1ms"),
    Case("upgrade-and-client-protocol", DR, policy("{connectionPool: {http: {h2UpgradePolicy: UPGRADE, "
                                                   "useClientProtocol: true}}}"),
         "spec.trafficPolicy.connectionPool.http.useClientProtocol", "h2UpgradePolicy is UPGRADE"),
    Case("h2-keepalive", DR, policy("{connectionPool: {http: {http2KeepAlive: {interval: 0s}}}}"),
         "spec.trafficPolicy.connectionPool.http.http2KeepAlive.interval", "at least 1ms"),
    Case("upgrade-policy-enum", DR, policy("{connectionPool: {http: {h2UpgradePolicy: ALWAYS}}}"),
         "spec.trafficPolicy.connectionPool.http.h2UpgradePolicy", "is not one of DEFAULT"),
    Case("cookie-name", DR, policy("{loadBalancer: {consistentHash: {httpCookie: {ttl: 0s}}}}"),
         "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name", "needs a cookie name"),
    Case("cookie-ttl-negative", DR, policy("{loadBalancer: {consistentHash: {httpCookie: {name: u, ttl: -1s}}}}"),
         "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.ttl", "must not be negative"),
    Case("two-hash-keys", DR, policy("{loadBalancer: {consistentHash: {httpHeaderName: x, useSourceIp: true}}}"),
         "spec.trafficPolicy.loadBalancer.consistentHash", "only one of httpHeaderName"),
    Case("simple-and-hash", DR, policy("{loadBalancer: {simple: RANDOM, consistentHash: {useSourceIp: true}}}"),
         "spec.trafficPolicy.loadBalancer", "only one of simple, consistentHash"),
    Case("ring-size-twice", DR, policy("{loadBalancer: {consistentHash: {useSourceIp: true, minimumRingSize: 10, "
                                       "ringHash: {minimumRingSize: 10}}}}"),
         "spec.trafficPolicy.loadBalancer.consistentHash", "only one of minimumRingSize or ringHash/maglev"),
    Case("maglev-unset", DR, policy("{loadBalancer: {consistentHash: {useSourceIp: true, maglev: {}}}}"),
         "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize", "must be set"),
    Case("maglev-not-prime", DR, policy("{loadBalancer: {consistentHash: {useSourceIp: true, maglev: "
                                        "{tableSize: 1000}}}}"),
         "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize", "prime number"),
    Case("maglev-too-big", DR, policy("{loadBalancer: {consistentHash: {useSourceIp: true, maglev: "
                                      "{tableSize: 5000011}}}}"),
         "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize", "below 5000011"),
    Case("warmup-both", DR, policy("{loadBalancer: {warmupDurationSecs: 10s, warmup: {duration: 10s}}}"),
         "spec.trafficPolicy.loadBalancer", "only one of warmupDurationSecs, warmup"),
    Case("warmup-duration", DR, policy("{loadBalancer: {simple: ROUND_ROBIN, warmup: {minimumPercent: 10}}}"),
         "spec.trafficPolicy.loadBalancer.warmup.duration", "needs a duration"),
    Case("simple-enum", DR, policy("{loadBalancer: {simple: FASTEST}}"), "spec.trafficPolicy.loadBalancer.simple",
         "is not one of"),
    Case("locality-both", DR, policy("{loadBalancer: {localityLbSetting: {distribute: [{from: a, to: {b: 100}}], "
                                     "failover: [{from: a, to: b}]}}}"),
         "spec.trafficPolicy.loadBalancer.localityLbSetting", "cannot be set together"),
    Case("locality-sum", DR, policy("{loadBalancer: {localityLbSetting: {distribute: [{from: us, to: "
                                    "{us/z1: 60, us/z2: 30}}]}}}"),
         "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to", "sum to 90, must be 100"),
    Case("locality-weight-zero", DR, policy("{loadBalancer: {localityLbSetting: {distribute: [{from: us, to: "
                                            "{us/z1: 0, us/z2: 100}}]}}}"),
         "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to", "1-100"),
    Case("locality-overlap", DR, policy("{loadBalancer: {localityLbSetting: {distribute: [{from: us, to: "
                                        "{'us/*': 50, us/z1: 50}}]}}}"),
         "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to", "overlaps"),
    Case("locality-wildcard-middle", DR, policy("{loadBalancer: {localityLbSetting: {distribute: [{from: 'us/*/a', "
                                                "to: {us: 100}}]}}}"),
         "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute", "at the end"),
    Case("failover-same-region", DR, policy("{outlierDetection: {interval: 1s}, loadBalancer: {localityLbSetting: "
                                            "{failover: [{from: us, to: us}]}}}"),
         "spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0]", "two different regions"),
    Case("failover-zone", DR, policy("{loadBalancer: {localityLbSetting: {failover: [{from: us/z1, to: eu}]}}}"),
         "spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0]", "regions only"),
    Case("failover-topology-priority", DR, policy("{loadBalancer: {localityLbSetting: {failover: [{from: us, to: eu}],"
                                                  " failoverPriority: [topology.kubernetes.io/zone]}}}"),
         "spec.trafficPolicy.loadBalancer.localityLbSetting.failoverPriority[0]", "cannot be set together"),
    Case("tls-mutual-no-cert", DR, policy("{tls: {mode: MUTUAL, privateKey: /k.pem}}"),
         "spec.trafficPolicy.tls.clientCertificate", "required for MUTUAL TLS"),
    Case("tls-credential-and-files", DR, policy("{tls: {mode: SIMPLE, credentialName: c, caCertificates: /ca}}"),
         "spec.trafficPolicy.tls", "when credentialName is set"),
    Case("tls-skip-verify-with-ca", DR, policy("{tls: {mode: SIMPLE, insecureSkipVerify: true, caCertificates: /c}}"),
         "spec.trafficPolicy.tls", "insecureSkipVerify is true"),
    Case("tls-mode-enum", DR, policy("{tls: {mode: STRICT}}"), "spec.trafficPolicy.tls.mode", "is not one of"),
    Case("port-policy-no-port", DR, policy("{portLevelSettings: [{tls: {mode: ISTIO_MUTUAL}}]}"),
         "spec.trafficPolicy.portLevelSettings[0].port", "needs a port"),
    Case("port-policy-empty", DR, policy("{portLevelSettings: [{port: {number: 80}}]}"),
         "spec.trafficPolicy.portLevelSettings[0]", "at least one field"),
    Case("retry-budget", DR, policy("{retryBudget: {percent: 150}}"), "spec.trafficPolicy.retryBudget.percent",
         "0-100"),
    Case("selector-export", DR, "{host: a, workloadSelector: {matchLabels: {app: a}}, exportTo: ['*']}",
         "spec.exportTo", "only be exported to its own namespace"),
    Case("selector-wildcard", DR, "{host: a, workloadSelector: {matchLabels: {app: '*'}}}",
         "spec.workloadSelector.matchLabels[app]", "wildcard is not supported"),
    Case("selector-networking-form", DR, "{host: a, workloadSelector: {labels: {app: a}}}",
         "spec.workloadSelector.labels", "unknown field in WorkloadSelector(matchLabels)"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_rejected(case: Case) -> None:
    assert_rejected(case)
