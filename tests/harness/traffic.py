"""Clients that send requests back to back on threads until stopped, counting every answer:
the fault tests' witness that no request failed while a part of the mesh died."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import httpx

OK = "200"


class Load:
    """`clients` threads, each calling `request(client)` in a loop on its own keep-alive
    `httpx.Client`; an outcome is the status code, or the exception's name and text."""

    def __init__(self, request: Callable[[httpx.Client], httpx.Response], clients: int = 3,
                 timeout_s: float = 30) -> None:
        self._request = request
        self._timeout_s = timeout_s
        self.answers: Counter[str] = Counter()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, name=f"load-{i}", daemon=True) for i in range(clients)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self._timeout_s + 10)

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout_s) as client:
            while not self._stop.is_set():
                try:
                    outcome = str(self._request(client).status_code)
                except httpx.HTTPError as exc:
                    outcome = f"{type(exc).__name__}: {exc}"
                with self._lock:
                    self.answers[outcome] += 1
                    if outcome != OK:
                        self.failures.append(outcome)

    def total(self) -> int:
        with self._lock:
            return sum(self.answers.values())

    def summary(self) -> str:
        with self._lock:
            return f"{len(self.failures)} of {sum(self.answers.values())} requests failed: " \
                   f"{Counter(self.failures).most_common(5)}"
