"""Schema of telemetry.istio.io's Telemetry (v1alpha1 and v1 share one shape).

Field names and types follow istio/api's telemetry/v1alpha1/telemetry.proto (v1 is synced
from it) and the generated CRD schema.  Message names carry a `Telemetry.` prefix because the
schema registry is global and the mesh config already defines its own `Tracing`.
"""

from __future__ import annotations

from libs.config.schema._types import BOOL, DOUBLE, DURATION, STRING, Enum, ListOf, MapOf, Message
from libs.config.schema.istio_type import MATCH_LABELS_SELECTOR, POLICY_TARGET_REFERENCE

WORKLOAD_MODE = Enum("Telemetry.WorkloadMode", ("CLIENT_AND_SERVER", "CLIENT", "SERVER"))
PROVIDER_REF = Message("Telemetry.ProviderRef", {"name": STRING})
PROVIDERS = ListOf(PROVIDER_REF)

# --- tracing ------------------------------------------------------------------------------

_HEADER_OR_ENV = {"name": STRING, "defaultValue": STRING}
CUSTOM_TAG = Message("Telemetry.Tracing.CustomTag", {
    "literal": Message("Telemetry.Tracing.Literal", {"value": STRING}),
    "environment": Message("Telemetry.Tracing.Environment", _HEADER_OR_ENV),
    "header": Message("Telemetry.Tracing.RequestHeader", _HEADER_OR_ENV),
}, oneofs=(("literal", "environment", "header"),))
TRACING = Message("Telemetry.Tracing", {
    "match": Message("Telemetry.Tracing.TracingSelector", {"mode": WORKLOAD_MODE}),
    "providers": PROVIDERS,
    "randomSamplingPercentage": DOUBLE,
    "disableSpanReporting": BOOL,
    "customTags": MapOf(CUSTOM_TAG),
    "useRequestIdForTraceSampling": BOOL,
})

# --- metrics ------------------------------------------------------------------------------

ISTIO_METRIC = Enum("Telemetry.MetricSelector.IstioMetric", (
    "ALL_METRICS", "REQUEST_COUNT", "REQUEST_DURATION", "REQUEST_SIZE", "RESPONSE_SIZE", "TCP_OPENED_CONNECTIONS",
    "TCP_CLOSED_CONNECTIONS", "TCP_SENT_BYTES", "TCP_RECEIVED_BYTES", "GRPC_REQUEST_MESSAGES",
    "GRPC_RESPONSE_MESSAGES"))
METRIC_SELECTOR = Message("Telemetry.MetricSelector", {
    "metric": ISTIO_METRIC,
    "customMetric": STRING,
    "mode": WORKLOAD_MODE,
}, oneofs=(("metric", "customMetric"),))
TAG_OVERRIDE = Message("Telemetry.MetricsOverrides.TagOverride", {
    "operation": Enum("Telemetry.MetricsOverrides.TagOverride.Operation", ("UPSERT", "REMOVE")),
    "value": STRING,
})
METRICS_OVERRIDES = Message("Telemetry.MetricsOverrides", {
    "match": METRIC_SELECTOR,
    "disabled": BOOL,
    "tagOverrides": MapOf(TAG_OVERRIDE),
})
METRICS = Message("Telemetry.Metrics", {
    "providers": PROVIDERS,
    "overrides": ListOf(METRICS_OVERRIDES),
    "reportingInterval": DURATION,
})

# --- access logging -----------------------------------------------------------------------

ACCESS_LOGGING = Message("Telemetry.AccessLogging", {
    "match": Message("Telemetry.AccessLogging.LogSelector", {"mode": WORKLOAD_MODE}),
    "providers": PROVIDERS,
    "disabled": BOOL,
    "filter": Message("Telemetry.AccessLogging.Filter", {"expression": STRING}),
})

TELEMETRY = Message("Telemetry", {
    "selector": MATCH_LABELS_SELECTOR,
    "targetRef": POLICY_TARGET_REFERENCE,
    "targetRefs": ListOf(POLICY_TARGET_REFERENCE),
    "tracing": ListOf(TRACING),
    "metrics": ListOf(METRICS),
    "accessLogging": ListOf(ACCESS_LOGGING),
})
