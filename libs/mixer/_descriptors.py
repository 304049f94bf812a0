"""What pilot asks Envoy to send the policy service and the policy service reads back: the
rate-limit descriptors of a Mixer quota, and the context of a Mixer check (context
extensions over gRPC, headers Envoy adds over HTTP).  The contract between the two, in one
place."""

from __future__ import annotations

# The rate-limit domain of Mixer quotas; any other domain is an envoyproxy/ratelimit one.
QUOTA_DOMAIN = "mizzen"
QUOTA_KEY = "quota"
CHARGE_KEY = "charge"
# `<workload name>.<namespace>` of the workload the request is for.
DESTINATION_KEY = "destination.workload"
# Envoy's own key for its remote_address action: the caller's address.
SOURCE_ADDRESS_KEY = "remote_address"
HEADERS_KEY = "request.headers"
# A check's context extensions: the destination workload (DESTINATION_KEY) and its labels
# as JSON, which pilot knows for the proxy whose filter asks, whatever the directory knows.
DESTINATION_LABELS_KEY = "destination.labels"


def header_key(header: str) -> str:
    """The descriptor key of a request header: pseudo-headers as themselves, others as
    `request.headers[<name>]`."""
    return header if header.startswith(":") else f"{HEADERS_KEY}[{header}]"


# A check over HTTP (ext_authz's http_service) is the request's own method, path and headers
# plus these, which pilot has Envoy add (values are Envoy's substitution formatters; `%` is
# written `%%`).  Envoy never forwards a client's header with the prefix (the filter's
# disallowed_headers), so whatever arrives under it is Envoy's word.
CHECK_HEADER_PREFIX = "x-mizzen-check-"
CHECK_SOURCE_HEADER = "x-mizzen-check-source"
CHECK_PRINCIPAL_HEADER = "x-mizzen-check-principal"
CHECK_DESTINATION_HEADER = "x-mizzen-check-destination"
CHECK_SCHEME_HEADER = "x-mizzen-check-scheme"
CHECK_SIZE_HEADER = "x-mizzen-check-size"
CHECK_SNI_HEADER = "x-mizzen-check-sni"
# DESTINATION_KEY's and DESTINATION_LABELS_KEY's values, as the gRPC check's extensions.
CHECK_WORKLOAD_HEADER = "x-mizzen-check-workload"
CHECK_LABELS_HEADER = "x-mizzen-check-labels"
CHECK_FORMATTERS = {
    CHECK_SOURCE_HEADER: "%DOWNSTREAM_REMOTE_ADDRESS%",
    CHECK_PRINCIPAL_HEADER: "%DOWNSTREAM_PEER_URI_SAN%",
    CHECK_DESTINATION_HEADER: "%DOWNSTREAM_LOCAL_ADDRESS%",
    CHECK_SCHEME_HEADER: "%REQ(:SCHEME)%",
    CHECK_SIZE_HEADER: "%REQ(CONTENT-LENGTH)%",
    CHECK_SNI_HEADER: "%REQUESTED_SERVER_NAME%",
}
# The registry port of the policy service that answers checks over HTTP/1.1: pilot prefers
# it to gRPC (a Python gRPC call costs several times a whole HTTP check).
CHECK_HTTP_PORT_NAME = "http-check"
