"""Which incoming headers every Bookinfo service copies onto its outgoing calls.

Envoy creates the spans, but only the application can tie an inbound request to the outbound
calls it causes: each service copies the trace context from the request it is serving onto the
requests it makes.  The list is the union of the ones in Istio's productpage and reviews, and
also carries `end-user`, which Istio's request-routing task matches on (`end-user: jason`).
"""

from __future__ import annotations

from collections.abc import Mapping

FORWARDED_HEADERS: tuple[str, ...] = (
    # Envoy's request id: used in access logs and for consistent trace sampling decisions.
    "x-request-id",
    # Zipkin / B3, multi-header and single-header forms.
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "b3",
    # Lightstep.
    "x-ot-span-context",
    # Datadog.
    "x-datadog-trace-id",
    "x-datadog-parent-id",
    "x-datadog-sampling-priority",
    # W3C Trace Context.
    "traceparent",
    "tracestate",
    # Google Cloud Trace and gRPC binary context.
    "x-cloud-trace-context",
    "grpc-trace-bin",
    # SkyWalking.
    "sw8",
    # Who is asking: Istio's routing tasks match on these.
    "end-user",
    "user-agent",
    # Session and credentials, so policies downstream see the same caller.
    "cookie",
    "authorization",
    "jwt",
)


def forward_headers(incoming: Mapping[str, str], *, end_user: str | None = None) -> dict[str, str]:
    """The headers to send upstream while serving a request that arrived with `incoming`.

    `incoming` is looked up by lower-case name (Starlette's `Headers` is case-insensitive already).
    `end_user`, when given, replaces any incoming `end-user`: productpage knows the signed-in user
    better than a header a client sent.
    """
    headers: dict[str, str] = {}
    for name in FORWARDED_HEADERS:
        value = incoming.get(name)
        if value is not None:
            headers[name] = value
    if end_user:
        headers["end-user"] = end_user
    return headers
