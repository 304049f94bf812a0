"""Outbound calls: one pooled httpx client per process, and a GET that never raises.

Bookinfo's services turn every upstream failure (refused, reset, timed out, non-200) into a
page or JSON fragment that says so, so `get_json` reports failures as values, not exceptions.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger("bookinfo.client")


def outbound_client(proxy: str | None) -> httpx.AsyncClient:
    """A client that sends every request through `proxy` (the sidecar) when one is set.

    `trust_env=False` because the proxy was already read from the environment by our settings,
    and httpx would otherwise also honour `NO_PROXY`, which could bypass the sidecar.  With a
    proxy, plain-HTTP requests go out in absolute form (`GET http://reviews:9080/reviews/0`),
    which is what Envoy's outbound listener routes on.
    """
    transport = httpx.AsyncHTTPTransport(proxy=proxy) if proxy else httpx.AsyncHTTPTransport()
    # Per-call deadlines are set in `get_json`; the client-wide timeout is only a backstop.
    return httpx.AsyncClient(transport=transport, trust_env=False, timeout=30.0)


@dataclass(frozen=True)
class Fetched:
    """The outcome of one GET: `status` is None when no response arrived at all."""

    status: int | None
    body: Any = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200


async def get_json(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], deadline_s: float,
) -> Fetched:
    """GET `url`, giving up after `deadline_s` seconds in total (connect, wait and body)."""
    try:
        async with asyncio.timeout(deadline_s):
            response = await client.get(url, headers=headers)
    except TimeoutError:
        log.warning("GET %s timed out after %.1fs", url, deadline_s)
        return Fetched(None, error=f"timed out after {deadline_s}s")
    except httpx.HTTPError as exc:
        log.warning("GET %s failed: %r", url, exc)
        return Fetched(None, error=repr(exc))
    if response.status_code != 200:
        log.warning("GET %s answered %d", url, response.status_code)
        return Fetched(response.status_code, error=f"status {response.status_code}")
    try:
        return Fetched(200, response.json())
    except ValueError as exc:
        # A 200 that is not JSON (a misrouted request, say) is a failure like any other.
        log.warning("GET %s answered 200 without JSON: %r", url, exc)
        return Fetched(None, error="response was not JSON")
