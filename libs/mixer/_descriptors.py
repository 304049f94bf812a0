"""What pilot asks Envoy to send the policy service and the policy service reads back: the
rate-limit descriptors of a Mixer quota, and the context extensions of a Mixer check.  The
contract between the two, in one place."""

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
