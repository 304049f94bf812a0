"""A watch response read in a thread of its own and handed to the event loop line by line.

Why a thread per watch: the client's read blocks until the server sends the next event, which
can take minutes; `asyncio.to_thread` would pin one of the default executor's few workers for
that long.  Why closing is more than `close()`: a thread blocked in `recv` is not woken by
closing the file object from another thread, so `close()` first shuts the socket down
(urllib3's `HTTPResponse.shutdown()`), which makes the blocked read return at once.

urllib3 behaviours this relies on:
- the API server sends a watch with `Transfer-Encoding: chunked`, and `stream(amt=None)` then
  yields each chunk as it arrives (`read_chunked`); on a response without chunked encoding
  the same call would block until the whole body, i.e. the end of the watch;
- a chunk boundary is not an event boundary: one chunk may hold several lines or part of
  one, so lines are reassembled here (`LineBuffer`);
- a connection cut before the terminating zero-length chunk raises `ProtocolError` (or
  `ReadTimeoutError` after the read timeout); a clean end of the stream simply stops
  iteration, and urllib3 then returns the connection to the pool by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import Any

import structlog

from libs.kube._errors import KubeError, KubeUnavailable

log = structlog.get_logger(__name__)

_END = object()


class LineBuffer:
    """Reassembles newline-delimited records from arbitrarily split chunks."""

    def __init__(self) -> None:
        self._pending = bytearray()

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        self._pending += chunk
        while (newline := self._pending.find(b"\n")) >= 0:
            line = bytes(self._pending[:newline]).strip()
            del self._pending[: newline + 1]
            if line:
                yield line

    @property
    def pending(self) -> bytes:
        return bytes(self._pending)


def _decode(line: bytes, action: str) -> dict[str, Any]:
    try:
        event = json.loads(line)
    except ValueError as exc:
        raise KubeError(f"{action}: unreadable watch event: {exc}") from exc
    if not isinstance(event, dict):
        raise KubeError(f"{action}: a watch event must be a JSON object")
    return event


class WatchStream:
    """One watch request.  Iterate `events()` on the loop; always `await close()`."""

    def __init__(self, open_response: Callable[[], Any], *, action: str, close_wait_s: float = 5.0) -> None:
        self.action = action
        self._close_wait_s = close_wait_s
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._done = asyncio.Event()
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._response: Any = None
        self._thread = threading.Thread(target=self._pump, args=(open_response,), name=action, daemon=True)
        self._thread.start()

    def _post(self, item: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is already closed: nobody is listening
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def _pump(self, open_response: Callable[[], Any]) -> None:
        response = None
        try:
            response = open_response()
            with self._lock:
                self._response = response
            if self._closing.is_set():
                return
            lines = LineBuffer()
            for chunk in response.stream(amt=None, decode_content=False):
                for line in lines.feed(chunk):
                    self._post(_decode(line, self.action))
            if lines.pending.strip():
                raise KubeUnavailable(self.action, "stream ended inside an event")
            self._post(_END)
        except Exception as exc:
            # Once close() has begun, a failed read is the socket shutdown doing its job.
            if not self._closing.is_set():
                self._post(exc if isinstance(exc, KubeError) else KubeUnavailable(self.action, repr(exc)))
        finally:
            if response is not None:
                # close() drops a connection cut mid-stream; release_conn() returns the slot to the pool.
                with contextlib.suppress(Exception):
                    response.close()
                with contextlib.suppress(Exception):
                    response.release_conn()
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._done.set)

    async def events(self) -> AsyncGenerator[dict[str, Any], None]:
        """Decoded lines until the server ends the stream; a broken stream raises `KubeError`."""
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, dict)
            yield item

    async def close(self) -> None:
        """Stop reading and wait (bounded) for the thread to let go of its connection."""
        self._closing.set()
        with self._lock:
            response = self._response
        if response is not None and not self._done.is_set():
            # ValueError/RuntimeError: already released, so the read is not blocked on a socket.
            with contextlib.suppress(ValueError, RuntimeError, OSError):
                response.shutdown()
        try:
            await asyncio.wait_for(self._done.wait(), timeout=self._close_wait_s)
        except TimeoutError:
            # Still connecting (the request timeout bounds it); a daemon thread cannot block exit.
            log.warning("watch thread still busy after close", action=self.action)
