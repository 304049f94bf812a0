"""Schemas of networking.istio.io (v1alpha3, v1beta1 and v1 share one shape): the shared
messages, VirtualService and Gateway.  DestinationRule is in `traffic`, the workload kinds
and Sidecar in `workloads`.

Field names and types follow istio/api's networking/v1alpha3/*.proto (checked against
the protos and the generated CRD schema, including fields added since Istio 1.24 such as
`retryBudget`, `zoneAwareLbSetting`, `http2KeepAlive` and the Gateway TLS `alpnProtocols`);
the JSON name of each field is the key.
"""

from __future__ import annotations

from libs.config.schema._types import (
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    INT32,
    STRING,
    UINT32,
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
HTTP_BODY = Message("HTTPBody", {"string": STRING, "bytes": BYTES}, oneofs=(("string", "bytes"),))
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
    "caCertCredentialName": STRING,
    "tlsCertificates": ListOf(TLS_CERTIFICATE),
    "subjectAltNames": STRINGS,
    "verifyCertificateSpki": STRINGS,
    "verifyCertificateHash": STRINGS,
    "minProtocolVersion": TLS_VERSION,
    "maxProtocolVersion": TLS_VERSION,
    "cipherSuites": STRINGS,
    "insecureSkipVerify": BOOL,
    "ecdhCurves": STRINGS,
    "alpnProtocols": STRINGS,
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
