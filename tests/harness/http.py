"""One HTTP client for every plain-HTTP call the tests make (readiness polls, admin and
debug endpoints, traffic through Envoy).

`httpx.get` and its siblings build a client per call, and a client builds an SSL context:
34 - 60 ms of CPU on a 2-core CI machine, spent even for http:// URLs.  Readiness polls run
every 20 ms beside the very services they wait for; moving them here took pytest's own CPU
through the integration and e2e tiers from 482 s to 206 s (process accounting,
2026-12-07).  No keep-alive: every request opens its own connection, as with
`httpx.get`, so a restarted service or a replaced Envoy listener is never met through a
stale pooled connection.  Calls that need TLS options make their own clients.
"""

from __future__ import annotations

import functools

import httpx

_NO_KEEP_ALIVE = httpx.Limits(max_keepalive_connections=0)
HTTP = httpx.Client(limits=_NO_KEEP_ALIVE)


@functools.cache
def via_http_proxy(address: str) -> httpx.Client:
    """A client sending every request through the HTTP proxy at `address` (a sidecar's
    outbound port in HTTP-proxy mode, `<ip>:15001`), one per address; no keep-alive, as
    `HTTP`, so each request is a new connection to the sidecar."""
    return httpx.Client(proxy=f"http://{address}", timeout=10, limits=_NO_KEEP_ALIVE)
