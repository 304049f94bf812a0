"""Schemas of networking.istio.io (v1alpha3, v1beta1 and v1 share one shape).

Field names and types follow istio/api's networking/v1alpha3/*.proto; the JSON name of
each field is the key.
"""

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

STRINGS = ListOf(STRING)
LABELS = MapOf(STRING)

# --- shared -------------------------------------------------------------------------

PORT_SELECTOR = Message("PortSelector", {"number": UINT32})
PERCENT = Message("Percent", {"value": DOUBLE})
WORKLOAD_SELECTOR = Message("WorkloadSelector", {"labels": LABELS})
STRING_MATCH = Message(
    "StringMatch", {"exact": STRING, "prefix": STRING, "regex": STRING}, oneofs=(("exact", "prefix", "regex"),)
)
DESTINATION = Message("Destination", {"host": STRING, "subset": STRING, "port": PORT_SELECTOR})
HEADER_OPERATIONS = Message(
    "HeaderOperations", {"set": LABELS, "add": LABELS, "remove": STRINGS}
)
HEADERS = Message("Headers", {"request": HEADER_OPERATIONS, "response": HEADER_OPERATIONS})
TLS_VERSION = Enum("TLSProtocol", ("TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3"))

# --- VirtualService -------------------------------------------------------------------

HTTP_MATCH_REQUEST = Message("HTTPMatchRequest", {
    "name": STRING,
    "uri": STRING_MATCH,
    "scheme": STRING_MATCH,
    "method": STRING_MATCH,
    "authority": STRING_MATCH,
    "headers": MapOf(STRING_MATCH),
    "port": UINT32,
    "sourceLabels": LABELS,
    "gateways": STRINGS,
    "queryParams": MapOf(STRING_MATCH),
    "ignoreUriCase": BOOL,
    "withoutHeaders": MapOf(STRING_MATCH),
    "sourceNamespace": STRING,
    "statPrefix": STRING,
})
HTTP_ROUTE_DESTINATION = Message("HTTPRouteDestination", {
    "destination": DESTINATION, "weight": INT32, "headers": HEADERS,
})
ROUTE_DESTINATION = Message("RouteDestination", {"destination": DESTINATION, "weight": INT32})
HTTP_REDIRECT = Message("HTTPRedirect", {
    "uri": STRING,
    "authority": STRING,
    "port": UINT32,
    "derivePort": Enum("RedirectPortSelection", ("FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT")),
    "scheme": STRING,
    "redirectCode": UINT32,
}, oneofs=(("port", "derivePort"),))
HTTP_BODY = Message("HTTPBody", {"string": STRING, "bytes": STRING}, oneofs=(("string", "bytes"),))
HTTP_DIRECT_RESPONSE = Message("HTTPDirectResponse", {"status": UINT32, "body": HTTP_BODY})
DELEGATE = Message("Delegate", {"name": STRING, "namespace": STRING})
REGEX_REWRITE = Message("RegexRewrite", {"match": STRING, "rewrite": STRING})
HTTP_REWRITE = Message("HTTPRewrite", {"uri": STRING, "authority": STRING, "uriRegexRewrite": REGEX_REWRITE})
HTTP_RETRY = Message("HTTPRetry", {
    "attempts": INT32,
    "perTryTimeout": DURATION,
    "retryOn": STRING,
    "retryRemoteLocalities": BOOL,
    "retryIgnorePreviousHosts": BOOL,
    "backoff": DURATION,
})
CORS_POLICY = Message("CorsPolicy", {
    "allowOrigin": STRINGS,
    "allowOrigins": ListOf(STRING_MATCH),
    "allowMethods": STRINGS,
    "allowHeaders": STRINGS,
    "exposeHeaders": STRINGS,
    "maxAge": DURATION,
    "allowCredentials": BOOL,
    "unmatchedPreflights": Enum("UnmatchedPreflights", ("UNSPECIFIED", "FORWARD", "IGNORE")),
})
FAULT_DELAY = Message("Delay", {
    "fixedDelay": DURATION, "exponentialDelay": DURATION, "percent": INT32, "percentage": PERCENT,
}, oneofs=(("fixedDelay", "exponentialDelay"),))
FAULT_ABORT = Message("Abort", {
    "httpStatus": INT32, "grpcStatus": STRING, "http2Error": STRING, "percentage": PERCENT,
}, oneofs=(("httpStatus", "grpcStatus", "http2Error"),))
HTTP_FAULT = Message("HTTPFaultInjection", {"delay": FAULT_DELAY, "abort": FAULT_ABORT})
HTTP_MIRROR_POLICY = Message("HTTPMirrorPolicy", {"destination": DESTINATION, "percentage": PERCENT})
HTTP_ROUTE = Message("HTTPRoute", {
    "name": STRING,
    "match": ListOf(HTTP_MATCH_REQUEST),
    "route": ListOf(HTTP_ROUTE_DESTINATION),
    "redirect": HTTP_REDIRECT,
    "directResponse": HTTP_DIRECT_RESPONSE,
    "delegate": DELEGATE,
    "rewrite": HTTP_REWRITE,
    "timeout": DURATION,
    "retries": HTTP_RETRY,
    "fault": HTTP_FAULT,
    "mirror": DESTINATION,
    "mirrors": ListOf(HTTP_MIRROR_POLICY),
    "mirrorPercent": UINT32,
    "mirrorPercentage": PERCENT,
    "corsPolicy": CORS_POLICY,
    "headers": HEADERS,
    # Removed from Istio's API; old configs still carry it.  Accepted with a warning.
    "websocketUpgrade": BOOL,
})
L4_MATCH = Message("L4MatchAttributes", {
    "destinationSubnets": STRINGS,
    "port": UINT32,
    "sourceSubnet": STRING,
    "sourceLabels": LABELS,
    "gateways": STRINGS,
    "sourceNamespace": STRING,
})
TLS_MATCH = Message("TLSMatchAttributes", {
    "sniHosts": STRINGS,
    "destinationSubnets": STRINGS,
    "port": UINT32,
    "sourceLabels": LABELS,
    "gateways": STRINGS,
    "sourceNamespace": STRING,
})
TCP_ROUTE = Message("TCPRoute", {"match": ListOf(L4_MATCH), "route": ListOf(ROUTE_DESTINATION)})
TLS_ROUTE = Message("TLSRoute", {"match": ListOf(TLS_MATCH), "route": ListOf(ROUTE_DESTINATION)})
VIRTUAL_SERVICE = Message("VirtualService", {
    "hosts": STRINGS,
    "gateways": STRINGS,
    "http": ListOf(HTTP_ROUTE),
    "tls": ListOf(TLS_ROUTE),
    "tcp": ListOf(TCP_ROUTE),
    "exportTo": STRINGS,
})

# --- Gateway ---------------------------------------------------------------------------

GATEWAY_PORT = Message("Port", {"number": UINT32, "protocol": STRING, "name": STRING, "targetPort": UINT32})
TLS_CERTIFICATE = Message("TLSCertificate", {
    "serverCertificate": STRING, "privateKey": STRING, "caCertificates": STRING,
})
SERVER_TLS_MODE = Enum("TLSmode", (
    "PASSTHROUGH", "SIMPLE", "MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL",
))
SERVER_TLS_SETTINGS = Message("ServerTLSSettings", {
    "httpsRedirect": BOOL,
    "mode": SERVER_TLS_MODE,
    "serverCertificate": STRING,
    "privateKey": STRING,
    "caCertificates": STRING,
    "caCrl": STRING,
    "credentialName": STRING,
    "credentialNames": STRINGS,
    "tlsCertificates": ListOf(TLS_CERTIFICATE),
    "subjectAltNames": STRINGS,
    "verifyCertificateSpki": STRINGS,
    "verifyCertificateHash": STRINGS,
    "minProtocolVersion": TLS_VERSION,
    "maxProtocolVersion": TLS_VERSION,
    "cipherSuites": STRINGS,
})
SERVER = Message("Server", {
    "port": GATEWAY_PORT,
    "bind": STRING,
    "hosts": STRINGS,
    "tls": SERVER_TLS_SETTINGS,
    "defaultEndpoint": STRING,
    "name": STRING,
})
GATEWAY = Message("Gateway", {"servers": ListOf(SERVER), "selector": LABELS})

# --- ServiceEntry, WorkloadEntry, WorkloadGroup ----------------------------------------------

WORKLOAD_ENTRY = Message("WorkloadEntry", {
    "address": STRING,
    "ports": MapOf(UINT32),
    "labels": LABELS,
    "network": STRING,
    "locality": STRING,
    "weight": UINT32,
    "serviceAccount": STRING,
})
SERVICE_PORT = Message("ServicePort", {"number": UINT32, "protocol": STRING, "name": STRING, "targetPort": UINT32})
SERVICE_ENTRY = Message("ServiceEntry", {
    "hosts": STRINGS,
    "addresses": STRINGS,
    "ports": ListOf(SERVICE_PORT),
    "location": Enum("Location", ("MESH_EXTERNAL", "MESH_INTERNAL")),
    "resolution": Enum("Resolution", ("NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS")),
    "endpoints": ListOf(WORKLOAD_ENTRY),
    "workloadSelector": WORKLOAD_SELECTOR,
    "exportTo": STRINGS,
    "subjectAltNames": STRINGS,
})
HTTP_HEADER = Message("HTTPHeader", {"name": STRING, "value": STRING})
READINESS_PROBE = Message("ReadinessProbe", {
    "initialDelaySeconds": INT32,
    "timeoutSeconds": INT32,
    "periodSeconds": INT32,
    "successThreshold": INT32,
    "failureThreshold": INT32,
    "httpGet": Message("HTTPHealthCheckConfig", {
        "path": STRING, "port": UINT32, "host": STRING, "scheme": STRING, "httpHeaders": ListOf(HTTP_HEADER),
    }),
    "tcpSocket": Message("TCPHealthCheckConfig", {"host": STRING, "port": UINT32}),
    "exec": Message("ExecHealthCheckConfig", {"command": STRINGS}),
    "grpc": Message("GrpcHealthCheckConfig", {"port": UINT32, "service": STRING}),
}, oneofs=(("httpGet", "tcpSocket", "exec", "grpc"),))
WORKLOAD_GROUP = Message("WorkloadGroup", {
    "metadata": Message("WorkloadGroupObjectMeta", {"labels": LABELS, "annotations": LABELS}),
    "template": WORKLOAD_ENTRY,
    "probe": READINESS_PROBE,
})

# --- DestinationRule ------------------------------------------------------------------------

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
LOCALITY_LB = Message("LocalityLoadBalancerSetting", {
    "distribute": ListOf(Message("LocalityDistribute", {"from": STRING, "to": MapOf(UINT32)})),
    "failover": ListOf(Message("LocalityFailover", {"from": STRING, "to": STRING})),
    "failoverPriority": STRINGS,
    "enabled": BOOL,
})
LOAD_BALANCER = Message("LoadBalancerSettings", {
    "simple": Enum("SimpleLB", ("UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN",
                                "LEAST_REQUEST")),
    "consistentHash": CONSISTENT_HASH,
    "localityLbSetting": LOCALITY_LB,
    "warmupDurationSecs": DURATION,
    "warmup": Message("WarmupConfiguration", {
        "duration": DURATION, "minimumPercent": DOUBLE, "aggression": DOUBLE,
    }),
}, oneofs=(("simple", "consistentHash"),))
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
    }),
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
    "retryBudget": Message("RetryBudget", {"percent": PERCENT, "minRetryConcurrency": UINT32}),
})
SUBSET = Message("Subset", {"name": STRING, "labels": LABELS, "trafficPolicy": TRAFFIC_POLICY})
DESTINATION_RULE = Message("DestinationRule", {
    "host": STRING,
    "trafficPolicy": TRAFFIC_POLICY,
    "subsets": ListOf(SUBSET),
    "exportTo": STRINGS,
    "workloadSelector": WORKLOAD_SELECTOR,
})

# --- Sidecar -------------------------------------------------------------------------------------

CAPTURE_MODE = Enum("CaptureMode", ("DEFAULT", "IPTABLES", "NONE"))
SIDECAR_PORT = Message("SidecarPort", {"number": UINT32, "protocol": STRING, "name": STRING, "targetPort": UINT32})
SIDECAR = Message("Sidecar", {
    "workloadSelector": WORKLOAD_SELECTOR,
    "ingress": ListOf(Message("IstioIngressListener", {
        "port": SIDECAR_PORT,
        "bind": STRING,
        "captureMode": CAPTURE_MODE,
        "defaultEndpoint": STRING,
        "tls": SERVER_TLS_SETTINGS,
        "connectionPool": CONNECTION_POOL,
    })),
    "egress": ListOf(Message("IstioEgressListener", {
        "port": SIDECAR_PORT, "bind": STRING, "captureMode": CAPTURE_MODE, "hosts": STRINGS,
    })),
    "outboundTrafficPolicy": Message("OutboundTrafficPolicy", {
        "mode": Enum("OutboundTrafficPolicyMode", ("REGISTRY_ONLY", "ALLOW_ANY")),
        "egressProxy": DESTINATION,
    }),
    "inboundConnectionPool": CONNECTION_POOL,
})

