"""Schema of Istio's MeshConfig (istio/api mesh/v1alpha1/config.proto and proxy.proto).

Users write it as the `mesh` key of the `istio` ConfigMap.  Fields Mizzen reads are typed
in full; every other field Istio defines is accepted as-is (`ANY`), so a mesh config
written for Istio loads unchanged, while a misspelt field is still refused by name.
"""

from __future__ import annotations

from libs.config.schema._types import (
    ANY,
    BOOL,
    DOUBLE,
    DURATION,
    INT32,
    STRING,
    UINT32,
    Enum,
    ListOf,
    MapOf,
    Message,
    SchemaType,
)

STRINGS = ListOf(STRING)

BODY_IN_CHECK = Message("MeshConfig.ExtensionProvider.EnvoyExternalAuthorizationRequestBody", {
    "maxRequestBytes": UINT32,
    "allowPartialMessage": BOOL,
    "packAsBytes": BOOL,
})
EXT_AUTHZ_HTTP = Message("MeshConfig.ExtensionProvider.EnvoyExternalAuthorizationHttpProvider", {
    "service": STRING,
    "port": UINT32,
    "timeout": DURATION,
    "pathPrefix": STRING,
    "failOpen": BOOL,
    "statusOnError": STRING,
    "includeHeadersInCheck": STRINGS,
    "includeRequestHeadersInCheck": STRINGS,
    "includeAdditionalHeadersInCheck": MapOf(STRING),
    "includeRequestBodyInCheck": BODY_IN_CHECK,
    "headersToUpstreamOnAllow": STRINGS,
    "headersToDownstreamOnDeny": STRINGS,
    "headersToDownstreamOnAllow": STRINGS,
})
EXT_AUTHZ_GRPC = Message("MeshConfig.ExtensionProvider.EnvoyExternalAuthorizationGrpcProvider", {
    "service": STRING,
    "port": UINT32,
    "timeout": DURATION,
    "failOpen": BOOL,
    "clearRouteCache": BOOL,
    "statusOnError": STRING,
    "includeRequestBodyInCheck": BODY_IN_CHECK,
})
ZIPKIN = Message("MeshConfig.ExtensionProvider.ZipkinTracingProvider", {
    "service": STRING,
    "port": UINT32,
    "maxTagLength": UINT32,
    "enable64bitTraceId": BOOL,
    "path": STRING,
    "traceContextOption": Enum("MeshConfig.ExtensionProvider.ZipkinTracingProvider.TraceContextOption",
                               ("USE_B3", "USE_B3_WITH_W3C_PROPAGATION")),
    "timeout": DURATION,
    "headers": ListOf(ANY),
})
FILE_ACCESS_LOG = Message("MeshConfig.ExtensionProvider.EnvoyFileAccessLogProvider", {
    "path": STRING,
    "logFormat": Message("MeshConfig.ExtensionProvider.EnvoyFileAccessLogProvider.LogFormat", {
        "text": STRING,
        "labels": ANY,
    }, oneofs=(("text", "labels"),)),
})
_ALS_FIELDS: dict[str, SchemaType] = {
    "service": STRING,
    "port": UINT32,
    "logName": STRING,
    "filterStateObjectsToLog": STRINGS,
}
HTTP_ALS = Message("MeshConfig.ExtensionProvider.EnvoyHttpGrpcV3LogProvider", {
    **_ALS_FIELDS,
    "additionalRequestHeadersToLog": STRINGS,
    "additionalResponseHeadersToLog": STRINGS,
    "additionalResponseTrailersToLog": STRINGS,
})
TCP_ALS = Message("MeshConfig.ExtensionProvider.EnvoyTcpGrpcV3LogProvider", _ALS_FIELDS)

# One provider kind per entry (a protobuf oneof); the ones Mizzen acts on are typed.
PROVIDER_KINDS: dict[str, SchemaType] = {
    "envoyExtAuthzHttp": EXT_AUTHZ_HTTP,
    "envoyExtAuthzGrpc": EXT_AUTHZ_GRPC,
    "zipkin": ZIPKIN,
    "envoyFileAccessLog": FILE_ACCESS_LOG,
    "envoyHttpAls": HTTP_ALS,
    "envoyTcpAls": TCP_ALS,
    "prometheus": Message("MeshConfig.ExtensionProvider.PrometheusMetricsProvider", {}),
    "lightstep": ANY,
    "datadog": ANY,
    "stackdriver": ANY,
    "opencensus": ANY,
    "skywalking": ANY,
    "opentelemetry": ANY,
    "envoyOtelAls": ANY,
    "sds": ANY,
}
EXTENSION_PROVIDER = Message("MeshConfig.ExtensionProvider", {
    "name": STRING,
    **PROVIDER_KINDS,
}, oneofs=(tuple(PROVIDER_KINDS),))

TRACING = Message("Tracing", {
    "zipkin": Message("Tracing.Zipkin", {"address": STRING}),
    "lightstep": ANY,
    "datadog": ANY,
    "stackdriver": ANY,
    "openCensusAgent": ANY,
    "customTags": MapOf(ANY),
    "maxPathTagLength": UINT32,
    "sampling": DOUBLE,
    "tlsSettings": ANY,
})
GATEWAY_TOPOLOGY = Message("Topology", {
    "numTrustedProxies": UINT32,
    "forwardClientCertDetails": Enum("Topology.ForwardClientCertDetails", (
        "UNDEFINED", "SANITIZE", "FORWARD_ONLY", "APPEND_FORWARD", "SANITIZE_SET", "ALWAYS_FORWARD_ONLY")),
    "proxyProtocol": ANY,
})
PROXY_CONFIG = Message("ProxyConfig", {
    "configPath": STRING,
    "binaryPath": STRING,
    "serviceCluster": STRING,
    "drainDuration": DURATION,
    "parentShutdownDuration": DURATION,
    "discoveryAddress": STRING,
    "discoveryRefreshDelay": DURATION,
    "zipkinAddress": STRING,
    "statsdUdpAddress": STRING,
    "envoyMetricsServiceAddress": STRING,
    "proxyAdminPort": INT32,
    "availabilityZone": STRING,
    "controlPlaneAuthPolicy": Enum("AuthenticationPolicy", ("NONE", "MUTUAL_TLS", "INHERIT")),
    "customConfigFile": STRING,
    "statNameLength": INT32,
    "concurrency": INT32,
    "proxyBootstrapTemplatePath": STRING,
    "interceptionMode": Enum("ProxyConfig.InboundInterceptionMode", ("REDIRECT", "TPROXY", "NONE")),
    "tracing": TRACING,
    "sds": ANY,
    "envoyAccessLogService": Message("RemoteService", {"address": STRING, "tlsSettings": ANY, "tcpKeepalive": ANY}),
    "envoyMetricsService": ANY,
    "proxyMetadata": MapOf(STRING),
    "runtimeValues": MapOf(STRING),
    "statusPort": INT32,
    "extraStatTags": STRINGS,
    "gatewayTopology": GATEWAY_TOPOLOGY,
    "terminationDrainDuration": DURATION,
    "meshId": STRING,
    "readinessProbe": ANY,
    "proxyStatsMatcher": ANY,
    "holdApplicationUntilProxyStarts": BOOL,
    "caCertificatesPem": STRINGS,
    "image": ANY,
    "privateKeyProvider": ANY,
    "proxyHeaders": ANY,
    "fileFlushInterval": DURATION,
    "fileFlushMinSizeKb": UINT32,
})

MESH_CONFIG = Message("MeshConfig", {
    "proxyListenPort": INT32,
    "proxyInboundListenPort": INT32,
    "proxyHttpPort": INT32,
    "connectTimeout": DURATION,
    "protocolDetectionTimeout": DURATION,
    "tcpKeepalive": ANY,
    "ingressClass": STRING,
    "ingressService": STRING,
    "ingressControllerMode": Enum("MeshConfig.IngressControllerMode", ("UNSPECIFIED", "OFF", "DEFAULT", "STRICT")),
    "ingressSelector": STRING,
    "enableTracing": BOOL,
    "accessLogFile": STRING,
    "accessLogFormat": STRING,
    "accessLogEncoding": Enum("MeshConfig.AccessLogEncoding", ("TEXT", "JSON")),
    "enableEnvoyAccessLogService": BOOL,
    "disableEnvoyListenerLog": BOOL,
    "defaultConfig": PROXY_CONFIG,
    "outboundTrafficPolicy": Message("MeshConfig.OutboundTrafficPolicy", {
        "mode": Enum("MeshConfig.OutboundTrafficPolicy.Mode", ("REGISTRY_ONLY", "ALLOW_ANY")),
    }),
    "inboundTrafficPolicy": Message("MeshConfig.InboundTrafficPolicy", {
        "mode": Enum("MeshConfig.InboundTrafficPolicy.Mode", ("PASSTHROUGH", "LOCALHOST")),
    }),
    "configSources": ListOf(ANY),
    "enableAutoMtls": BOOL,
    "trustDomain": STRING,
    "trustDomainAliases": STRINGS,
    "caCertificates": ListOf(ANY),
    "defaultServiceExportTo": STRINGS,
    "defaultVirtualServiceExportTo": STRINGS,
    "defaultDestinationRuleExportTo": STRINGS,
    "rootNamespace": STRING,
    "localityLbSetting": ANY,
    "dnsRefreshRate": DURATION,
    "h2UpgradePolicy": Enum("MeshConfig.H2UpgradePolicy", ("DO_NOT_UPGRADE", "UPGRADE")),
    "inboundClusterStatName": STRING,
    "outboundClusterStatName": STRING,
    "certificates": ListOf(ANY),
    "thriftConfig": ANY,
    "serviceSettings": ListOf(ANY),
    "enablePrometheusMerge": BOOL,
    "verifyCertificateAtClient": BOOL,
    "ca": ANY,
    "extensionProviders": ListOf(EXTENSION_PROVIDER),
    "defaultProviders": Message("MeshConfig.DefaultProviders", {
        "tracing": STRINGS,
        "metrics": STRINGS,
        "accessLogging": STRINGS,
    }),
    "discoverySelectors": ListOf(ANY),
    "pathNormalization": ANY,
    "defaultHttpRetryPolicy": ANY,
    "meshMTLS": ANY,
    "tlsDefaults": ANY,
    "serviceScopeConfigs": ListOf(ANY),
    # Istio 1.0/1.1 (Mixer): the policy service's address and failure mode.
    "mixerCheckServer": STRING,
    "mixerReportServer": STRING,
    "disablePolicyChecks": BOOL,
    "policyCheckFailOpen": BOOL,
    "sidecarToTelemetrySessionAffinity": BOOL,
    "authPolicy": Enum("MeshConfig.AuthPolicy", ("NONE", "MUTUAL_TLS")),
    "sdsUdsPath": STRING,
    "enableSdsTokenMount": BOOL,
    "sdsUseK8sSaJwt": BOOL,
    "reportBatchMaxEntries": UINT32,
    "reportBatchMaxTime": DURATION,
})


# The ConfigMap `ratelimit-config`: each data entry an envoyproxy/ratelimit configuration,
# checked by its own rules (libs.config.ratelimit), not by a schema.
RATELIMIT_CONFIG = Message("RateLimitConfig", {"configs": MapOf(ANY)})
