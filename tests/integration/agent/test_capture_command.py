"""`python -m services.agent.capture`, the injected istio-init's command, run for real as
root in a fresh network namespace: the rules land in its nat table, and a second run (a
restarted init container) leaves exactly one set."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from tools.localmesh.netns import available

pytestmark = pytest.mark.integration


@pytest.fixture
def namespace() -> Iterator[str]:
    missing = available()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the capture command {missing} (.ci/run runs as root with iptables)")
        pytest.skip(f"the capture command {missing}")
    name = f"mzcap-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def nat_rules(namespace: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "exec", namespace, "iptables", "-t", "nat", "-S"], capture_output=True,
                         text=True, check=True).stdout
    return [line for line in out.splitlines() if "ISTIO" in line]


def capture(namespace: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", namespace, sys.executable, "-m", "services.agent.capture", *flags],
                          capture_output=True, text=True, check=False, timeout=60)


def test_rules_installed_and_rerun_cleanly(namespace: str) -> None:
    flags = ("--include-inbound-ports", "80,443", "--exclude-outbound-ip-ranges", "10.96.0.0/12",
             "--exclude-outbound-ports", "3306")
    first = capture(namespace, *flags)
    assert first.returncode == 0, first.stderr
    rules = nat_rules(namespace)
    assert "-A ISTIO_INBOUND -p tcp -m tcp --dport 443 -j ISTIO_IN_REDIRECT" in rules
    assert "-A ISTIO_OUTPUT -d 10.96.0.0/12 -j RETURN" in rules
    assert "-A ISTIO_OUTPUT -p tcp -m tcp --dport 3306 -j RETURN" in rules
    assert "-A OUTPUT -p tcp -j ISTIO_OUTPUT" in rules
    second = capture(namespace, *flags)
    assert second.returncode == 0, second.stderr
    assert nat_rules(namespace) == rules


def test_a_failing_iptables_fails_the_init_container(namespace: str) -> None:
    failed = capture(namespace, "--iptables", "/bin/false")
    assert failed.returncode == 1
    assert "capture: /bin/false -t nat -N ISTIO_INBOUND" in failed.stderr
