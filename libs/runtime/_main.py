"""Process entry: uvloop, the service coroutine, and an exit code."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable

import structlog
import uvloop

from libs.runtime._errors import FatalServiceError

log = structlog.get_logger(__name__)


def run_service(main: Callable[[], Awaitable[None]]) -> int:
    """Run `main()` on uvloop; return the process exit code (0 clean, 1 fatal)."""
    try:
        uvloop.run(main())  # type: ignore[arg-type]
    except FatalServiceError as exc:
        log.error("service stopped on a fatal error", task=exc.task, error=repr(exc.cause))
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def exit_with(code: int) -> None:
    sys.stderr.flush()
    raise SystemExit(code)
