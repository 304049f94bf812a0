"""Readiness by polling a condition, never by sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class NotReady(AssertionError):
    pass


def wait_until(check: Callable[[], T | None], *, timeout: float = 20.0, interval: float = 0.02,
               what: str = "condition") -> T:
    """Call `check` until it returns a truthy value (returned) or `timeout` passes.

    Exceptions from `check` count as "not yet"; the last one is reported on timeout.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:
            last_error = exc
        if time.monotonic() > deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise NotReady(f"timed out after {timeout}s waiting for {what}{detail}")
        time.sleep(interval)
