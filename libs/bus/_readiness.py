"""`/readyz` follows NATS: a service that has lost its source of truth for longer than a
grace period says so, and is ready again once the connection is back."""

from __future__ import annotations

import asyncio

import structlog

from libs.bus._connection import Bus
from libs.runtime import Readiness

log = structlog.get_logger(__name__)

NATS_CONNECTED = "nats-connected"


def track_connection(bus: Bus, readiness: Readiness, *, grace_s: float, condition: str = NATS_CONNECTED) -> None:
    """Mark `condition` unready once NATS has been away `grace_s` (a blip stays unseen),
    and ready again when it returns.  Needs a running event loop."""
    loop = asyncio.get_running_loop()
    pending: list[asyncio.TimerHandle] = []

    def lost() -> None:
        log.warning("NATS away past the grace period: not ready", grace_s=grace_s, client=bus.name)
        readiness.mark(condition, False)

    def changed(connected: bool) -> None:
        for timer in pending:
            timer.cancel()
        pending.clear()
        if connected:
            readiness.mark(condition, True)
        else:
            pending.append(loop.call_later(grace_s, lost))

    bus.on_connection(changed)
