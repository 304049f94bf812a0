"""One NATS connection per process, reconnecting forever and logging every transition."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import nats
import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client
from nats.js.client import JetStreamContext

from libs.bus._errors import BusError, BusUnavailable
from libs.bus._kv import KvBucket, Reconnects

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class BusSettings:
    """How to reach NATS."""

    url: str = "nats://127.0.0.1:4222"
    # Seconds to wait for the first connection before giving up; None waits forever
    # (services: NATS may start after them, and they stay unready meanwhile).
    connect_timeout_s: float | None = 10.0
    # Seconds between reconnect attempts once connected (reconnects never stop).
    reconnect_wait_s: float = 0.5


class Bus:
    """A process's NATS connection and its JetStream context."""

    def __init__(self, nc: Client, js: JetStreamContext, name: str) -> None:
        self._nc = nc
        self._js = js
        self.name = name
        self._buckets: dict[str, KvBucket] = {}
        self._listeners: list[Callable[[bool], None]] = []
        self._reconnects = Reconnects()

    def on_connection(self, listener: Callable[[bool], None]) -> None:
        """Call `listener(False)` when the connection drops and `listener(True)` when it is back."""
        self._listeners.append(listener)

    def _connection_changed(self, connected: bool) -> None:
        if connected:
            self._reconnects.happened()
        for listener in self._listeners:
            listener(connected)

    @classmethod
    async def connect(cls, settings: BusSettings, *, name: str) -> Bus:
        bus: Bus | None = None

        async def disconnected() -> None:
            log.warning("nats disconnected", url=settings.url, client=name)
            if bus is not None:
                bus._connection_changed(False)

        async def reconnected() -> None:
            log.info("nats reconnected", url=nc.connected_url.geturl() if nc.connected_url else settings.url,
                     client=name)
            if bus is not None:
                bus._connection_changed(True)

        async def error(exc: Exception) -> None:
            log.warning("nats error", error=repr(exc), client=name)

        async def closed() -> None:
            log.info("nats connection closed", client=name)

        nc = Client()
        connecting = nc.connect(
            servers=[settings.url],
            name=name,
            connect_timeout=2,
            # nats-py annotates this int but sleeps on it: half a second is fine.
            reconnect_time_wait=settings.reconnect_wait_s,  # type: ignore[arg-type]
            max_reconnect_attempts=-1,
            allow_reconnect=True,
            disconnected_cb=disconnected,
            reconnected_cb=reconnected,
            error_cb=error,
            closed_cb=closed,
        )
        try:
            await asyncio.wait_for(connecting, timeout=settings.connect_timeout_s)
        except (OSError, nats.errors.Error, TimeoutError) as exc:
            with contextlib.suppress(Exception):
                await nc.close()
            reason = f"no answer within {settings.connect_timeout_s}s" if isinstance(exc, TimeoutError) else repr(exc)
            raise BusUnavailable(f"cannot connect to NATS at {settings.url}: {reason}") from exc
        log.info("nats connected", url=settings.url, client=name)
        bus = cls(nc, nc.jetstream(), name)
        return bus

    @property
    def connected(self) -> bool:
        return self._nc.is_connected

    async def kv(
        self,
        bucket: str,
        *,
        history: int = 1,
        ttl_s: float | None = None,
        expiry_markers_s: float | None = None,
        reopen: bool = False,
    ) -> KvBucket:
        """Open `bucket`, creating it (with these limits) if it does not exist yet.

        `ttl_s` expires entries not rewritten within that time; `expiry_markers_s` makes
        NATS leave a delete marker when it expires an entry, so watchers see it go.
        `reopen` looks the bucket up again instead of answering from this connection's
        cache: after NATS came back without its storage, it creates the bucket anew.
        """
        if bucket in self._buckets and not reopen:
            return self._buckets[bucket]
        try:
            try:
                kv = await self._js.key_value(bucket)
            except nats.js.errors.BucketNotFoundError:
                kv = await self._js.create_key_value(
                    bucket=bucket, history=history, ttl=ttl_s, limit_marker_ttl=expiry_markers_s,
                )
        except nats.js.errors.ServiceUnavailableError as exc:
            raise BusUnavailable(f"JetStream is not available (is nats-server running with -js?): {exc}") from exc
        except (nats.errors.Error, OSError) as exc:
            raise BusError(f"cannot open KV bucket {bucket}: {exc!r}") from exc
        handle = KvBucket(bucket, kv, self._reconnects)
        self._buckets[bucket] = handle
        return handle

    async def publish(self, subject: str, payload: bytes) -> None:
        await self._nc.publish(subject, payload)

    async def close(self) -> None:
        if not self._nc.is_closed:
            try:
                await self._nc.drain()
            except (nats.errors.Error, OSError):
                await self._nc.close()
