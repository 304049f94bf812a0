"""Timeouts, retries and fault injection through a real Envoy gateway.

Retries are watched from the upstream's side: a flaky upstream fails (or stalls) the
first N attempts of each request and records every attempt with the
`x-envoy-attempt-count` Envoy sent.  Each request uses its own path, so a test reads
exactly its attempts.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

from samples.echo import EchoServer
from tests.harness.config_env import ConfigEnv
from tests.harness.flaky import FlakyServer
from tests.harness.mesh import Proxy
from tests.harness.ports import free_port
from tests.harness.routing import ask, documents, gateway_yaml, virtual_service
from tests.harness.upstreams import Workload, service_entry
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

TO_ECHO = "route: [{destination: {host: echo}}]"
TO_FLAKY = "route: [{destination: {host: flaky}}]"

VIRTUAL_SERVICES = [
    virtual_service("timeout", f"- timeout: 0.5s\n  {TO_ECHO}"),
    virtual_service("retry-default", f"- {TO_FLAKY}"),
    virtual_service("retry", f"- retries: {{attempts: 3}}\n  {TO_FLAKY}"),
    virtual_service("retry-codes", f"- retries: {{attempts: 2, retryOn: 'gateway-error,418'}}\n  {TO_FLAKY}"),
    virtual_service("retry-off", f"- retries: {{attempts: 0}}\n  {TO_FLAKY}"),
    virtual_service("per-try",
                    f"- retries: {{attempts: 2, perTryTimeout: 0.3s, retryOn: gateway-error}}\n  {TO_FLAKY}"),
    virtual_service("abort", f"- fault: {{abort: {{httpStatus: 418, percentage: {{value: 50}}}}}}\n  {TO_ECHO}"),
    virtual_service("abort-unset", f"- fault: {{abort: {{httpStatus: 418}}}}\n  {TO_ECHO}"),
    virtual_service("abort-grpc",
                    f"- fault: {{abort: {{grpcStatus: UNAVAILABLE, percentage: {{value: 100}}}}}}\n  {TO_ECHO}"),
    virtual_service("delay", f"- fault: {{delay: {{fixedDelay: 0.3s, percentage: {{value: 100}}}}}}\n  {TO_ECHO}"),
    virtual_service("delay-half", f"- fault: {{delay: {{fixedDelay: 0.3s, percentage: {{value: 50}}}}}}\n  {TO_ECHO}"),
]


@dataclass
class Setup:
    port: int
    echo: EchoServer
    flaky: FlakyServer
    gateway: Proxy

    def fault_stat(self, name: str) -> int:
        stats = self.gateway.admin.stats(rf"^http\.outbound_[0-9.]+_{self.port}\.fault\.")
        return sum(value for key, value in stats.items() if key.endswith(f".fault.{name}"))


@pytest.fixture(scope="module")
def setup(env: ConfigEnv, gateway: Proxy) -> Iterator[Setup]:
    port = free_port()
    with EchoServer("echo") as echo:
        flaky = FlakyServer("flaky").start()
        try:
            env.apply("http-resilience", documents(
                service_entry("echo.default.svc.cluster.local", [Workload(echo, {"app": "echo"})]),
                service_entry("flaky.default.svc.cluster.local", [Workload(flaky, {"app": "flaky"})]),
                gateway_yaml("gw", [port]),
                *VIRTUAL_SERVICES,
            ))
            assert env.nacks() == []
            wait_until(lambda: ask(port, "timeout.test").status_code == 200, what="the gateway listener")
            yield Setup(port, echo, flaky, gateway)
        finally:
            flaky.stop()


# Envoy arms timers from the time its event loop iteration started, so under load a timer
# can fire a few milliseconds before its full duration has passed on the client's clock.
TIMER_SLACK_S = 0.02

_paths = itertools.count()


def unique(prefix: str) -> str:
    return f"/{prefix}/{next(_paths)}"


def timed(setup: Setup, host: str, path: str = "/", **headers: str) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    response = ask(setup.port, host, path, **headers)
    return response, time.monotonic() - start


def test_timeout_answers_504_after_the_timeout(setup: Setup) -> None:
    response, elapsed = timed(setup, "timeout.test", x_echo_delay_ms="3000")
    assert response.status_code == 504
    assert 0.5 - TIMER_SLACK_S <= elapsed < 2.5, elapsed
    assert ask(setup.port, "timeout.test", x_echo_delay_ms="100").status_code == 200


def test_retries_recover_a_flaky_upstream(setup: Setup) -> None:
    path = unique("recover")
    response = ask(setup.port, "retry.test", path, x_fail_first="2")
    assert response.status_code == 200
    attempts = setup.flaky.attempts(path)
    assert [(a.attempt_count, a.status) for a in attempts] == [("1", 503), ("2", 503), ("3", 200)]
    assert len({a.request_id for a in attempts}) == 1, "every attempt carries the request's id"


def test_retries_give_up_after_attempts(setup: Setup) -> None:
    path = unique("give-up")
    response = ask(setup.port, "retry.test", path, x_fail_first="10")
    assert response.status_code == 503
    # `attempts: 3` is three retries: four tries in all.
    assert [a.attempt_count for a in setup.flaky.attempts(path)] == ["1", "2", "3", "4"]


def test_default_retry_policy_retries_503_twice(setup: Setup) -> None:
    path = unique("default")
    assert ask(setup.port, "retry-default.test", path, x_fail_first="2").status_code == 200
    assert len(setup.flaky.attempts(path)) == 3
    path = unique("default-500")
    assert ask(setup.port, "retry-default.test", path, x_fail_first="1", x_fail_status="500").status_code == 500
    assert len(setup.flaky.attempts(path)) == 1, "Istio's default retries 503, not other 5xx"


def test_retry_on_conditions_and_status_codes(setup: Setup) -> None:
    for status, tries in (("418", 2), ("502", 2), ("500", 1)):
        path = unique(f"codes-{status}")
        expected = 200 if tries == 2 else int(status)
        assert ask(setup.port, "retry-codes.test", path, x_fail_first="1", x_fail_status=status).status_code == \
            expected, status
        assert len(setup.flaky.attempts(path)) == tries, status


def test_zero_attempts_disable_retries(setup: Setup) -> None:
    path = unique("off")
    assert ask(setup.port, "retry-off.test", path, x_fail_first="1").status_code == 503
    assert len(setup.flaky.attempts(path)) == 1


def test_per_try_timeout(setup: Setup) -> None:
    path = unique("per-try")
    response, elapsed = timed(setup, "per-try.test", path, x_slow_first="1", x_slow_ms="3000")
    assert response.status_code == 200
    assert 0.3 - TIMER_SLACK_S <= elapsed < 2.5, elapsed
    assert [a.attempt_count for a in setup.flaky.attempts(path)] == ["1", "2"]
    path = unique("per-try-all")
    response, elapsed = timed(setup, "per-try.test", path, x_slow_first="9", x_slow_ms="3000")
    assert response.status_code == 504
    assert elapsed >= 0.9 - TIMER_SLACK_S, "three tries of 0.3 s each"
    assert len(setup.flaky.attempts(path)) == 3


def test_fault_abort_at_its_percentage(setup: Setup) -> None:
    before_hits, before_aborts = len(setup.echo.hits), setup.fault_stat("aborts_injected")
    with httpx.Client(timeout=10) as client:
        statuses = Counter(ask(setup.port, "abort.test", client=client).status_code for _ in range(400))
    assert set(statuses) == {200, 418}
    # 400 draws at p=0.5: the standard deviation is 10, so +-50 is 5 sigma.
    assert abs(statuses[418] - 200) <= 50, statuses
    assert len(setup.echo.hits) - before_hits == statuses[200], "aborted requests never reach the upstream"
    assert setup.fault_stat("aborts_injected") - before_aborts == statuses[418]


def test_fault_abort_without_percentage_injects_nothing(setup: Setup) -> None:
    with httpx.Client(timeout=10) as client:
        assert {ask(setup.port, "abort-unset.test", client=client).status_code for _ in range(20)} == {200}


def test_fault_abort_with_grpc_status(setup: Setup) -> None:
    before = len(setup.echo.hits)
    response = ask(setup.port, "abort-grpc.test", method="POST", content_type="application/grpc")
    assert response.status_code == 200
    assert response.headers["grpc-status"] == "14"  # UNAVAILABLE
    assert len(setup.echo.hits) == before


def test_fault_delay_at_100_percent(setup: Setup) -> None:
    for _ in range(3):
        response, elapsed = timed(setup, "delay.test")
        assert response.status_code == 200
        assert elapsed >= 0.3 - TIMER_SLACK_S, elapsed


def test_fault_delay_at_its_percentage(setup: Setup) -> None:
    before = setup.fault_stat("delays_injected")

    def run(_: int) -> list[float]:
        with httpx.Client(timeout=10) as client:
            return [timed_with(client) for _ in range(8)]

    def timed_with(client: httpx.Client) -> float:
        start = time.monotonic()
        assert ask(setup.port, "delay-half.test", client=client).status_code == 200
        return time.monotonic() - start

    with ThreadPoolExecutor(max_workers=25) as pool:
        elapsed = [e for batch in pool.map(run, range(25)) for e in batch]
    injected = setup.fault_stat("delays_injected") - before
    # 200 draws at p=0.5: the standard deviation is about 7.1, so +-35 is ~5 sigma.
    assert abs(injected - 100) <= 35, injected
    # Every delayed request took at least the delay.  (The converse does not hold on a
    # loaded machine, where an undelayed request can be slow too.)
    assert sum(1 for e in elapsed if e >= 0.3 - TIMER_SLACK_S) >= injected
