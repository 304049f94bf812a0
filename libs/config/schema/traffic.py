"""Schema of DestinationRule (networking.istio.io, istio/api destination_rule.proto)."""

from __future__ import annotations

from libs.config.schema._types import (
    BOOL,
    DOUBLE,
    DURATION,
    INT32,
    STRING,
    UINT32,
    UINT64,
    Enum,
    ListOf,
    MapOf,
    Message,
)
from libs.config.schema.istio_type import MATCH_LABELS_SELECTOR
from libs.config.schema.networking import LABELS, PORT_SELECTOR, STRINGS

CONSISTENT_HASH = Message("ConsistentHashLB", {
    "httpHeaderName": STRING,
    "httpCookie": Message("HTTPCookie", {
        "name": STRING, "path": STRING, "ttl": DURATION,
        "attributes": ListOf(Message("HTTPCookieAttribute", {"name": STRING, "value": STRING})),
    }),
    "useSourceIp": BOOL,
    "httpQueryParameterName": STRING,
    "ringHash": Message("RingHash", {"minimumRingSize": UINT64}),
    "maglev": Message("MagLev", {"tableSize": UINT64}),
    "minimumRingSize": UINT64,
}, oneofs=(("httpHeaderName", "httpCookie", "useSourceIp", "httpQueryParameterName"), ("ringHash", "maglev")))
REGION_FAILOVER = Message("LocalityFailover", {"from": STRING, "to": STRING})
LOCALITY_LB = Message("LocalityLoadBalancerSetting", {
    "distribute": ListOf(Message("LocalityDistribute", {"from": STRING, "to": MapOf(UINT32)})),
    "failover": ListOf(REGION_FAILOVER),
    "failoverPriority": STRINGS,
    "enabled": BOOL,
})
ZONE_AWARE_LB = Message("ZoneAwareLoadBalancerSetting", {
    "enabled": BOOL,
    "failover": ListOf(REGION_FAILOVER),
    "failoverPriority": STRINGS,
    "minClusterSize": UINT64,
})
LOAD_BALANCER = Message("LoadBalancerSettings", {
    "simple": Enum("SimpleLB", ("UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN",
                                "LEAST_REQUEST")),
    "consistentHash": CONSISTENT_HASH,
    "localityLbSetting": LOCALITY_LB,
    "zoneAwareLbSetting": ZONE_AWARE_LB,
    "warmupDurationSecs": DURATION,
    "warmup": Message("WarmupConfiguration", {
        "duration": DURATION, "minimumPercent": DOUBLE, "aggression": DOUBLE,
    }),
}, oneofs=(("simple", "consistentHash"), ("warmupDurationSecs", "warmup"),
           ("localityLbSetting", "zoneAwareLbSetting")))
CONNECTION_POOL = Message("ConnectionPoolSettings", {
    "tcp": Message("TCPSettings", {
        "maxConnections": INT32,
        "connectTimeout": DURATION,
        "tcpKeepalive": Message("TcpKeepalive", {"probes": UINT32, "time": DURATION, "interval": DURATION}),
        "maxConnectionDuration": DURATION,
        "idleTimeout": DURATION,
    }),
    "http": Message("HTTPSettings", {
        "http1MaxPendingRequests": INT32,
        "http2MaxRequests": INT32,
        "maxRequestsPerConnection": INT32,
        "maxRetries": INT32,
        "idleTimeout": DURATION,
        "h2UpgradePolicy": Enum("H2UpgradePolicy", ("DEFAULT", "DO_NOT_UPGRADE", "UPGRADE")),
        "useClientProtocol": BOOL,
        "maxConcurrentStreams": INT32,
        "http2KeepAlive": Message("ConnectionKeepalive", {"interval": DURATION, "timeout": DURATION}),
    }),
    "perHostLimits": Message("PerHostLimits", {"maxConnections": INT32}),
})
OUTLIER_DETECTION = Message("OutlierDetection", {
    "splitExternalLocalOriginErrors": BOOL,
    "consecutiveLocalOriginFailures": UINT32,
    "consecutiveGatewayErrors": UINT32,
    "consecutive5xxErrors": UINT32,
    "interval": DURATION,
    "baseEjectionTime": DURATION,
    "maxEjectionPercent": INT32,
    "minHealthPercent": INT32,
    "consecutiveErrors": INT32,
    "outlierDetectionHttpErrorCodes": ListOf(UINT32),
})
CLIENT_TLS = Message("ClientTLSSettings", {
    "mode": Enum("ClientTLSMode", ("DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL")),
    "clientCertificate": STRING,
    "privateKey": STRING,
    "caCertificates": STRING,
    "credentialName": STRING,
    "subjectAltNames": STRINGS,
    "sni": STRING,
    "insecureSkipVerify": BOOL,
    "caCrl": STRING,
})
PORT_TRAFFIC_POLICY = Message("PortTrafficPolicy", {
    "port": PORT_SELECTOR,
    "loadBalancer": LOAD_BALANCER,
    "connectionPool": CONNECTION_POOL,
    "outlierDetection": OUTLIER_DETECTION,
    "tls": CLIENT_TLS,
})
TRAFFIC_POLICY = Message("TrafficPolicy", {
    "loadBalancer": LOAD_BALANCER,
    "connectionPool": CONNECTION_POOL,
    "outlierDetection": OUTLIER_DETECTION,
    "tls": CLIENT_TLS,
    "portLevelSettings": ListOf(PORT_TRAFFIC_POLICY),
    "tunnel": Message("TunnelSettings", {"protocol": STRING, "targetHost": STRING, "targetPort": UINT32}),
    "proxyProtocol": Message("ProxyProtocol", {"version": Enum("ProxyProtocolVersion", ("V1", "V2"))}),
    # RetryBudget.percent is a google.protobuf.DoubleValue: a bare number in JSON.
    "retryBudget": Message("RetryBudget", {
        "percent": DOUBLE, "minRetryConcurrency": UINT32, "budgetInterval": DURATION,
    }),
})
SUBSET = Message("Subset", {"name": STRING, "labels": LABELS, "trafficPolicy": TRAFFIC_POLICY})
DESTINATION_RULE = Message("DestinationRule", {
    "host": STRING,
    "trafficPolicy": TRAFFIC_POLICY,
    "subsets": ListOf(SUBSET),
    "exportTo": STRINGS,
    "workloadSelector": MATCH_LABELS_SELECTOR,
})
