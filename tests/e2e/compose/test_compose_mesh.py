"""The whole mesh in docker-compose (docker-compose.yml, images from `make images`):
Bookinfo through the compose ingress with mutual TLS and identities from citadel,
mizzenctl on the host through its context, the same Bookinfo task checks as every other
way Mizzen runs (tests/e2e/bookinfo_tasks.py), and pilot killed under traffic."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from tests.e2e import bookinfo_tasks
from tests.e2e.bookinfo_tasks import TASKS
from tests.e2e.compose.harness import BookinfoOnCompose, Traffic
from tests.harness.http import HTTP
from tests.harness.waiting import wait_until
from tools.containers.compose import expected_proxies

# The first test carries the session's image build (when the sources changed) and start.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def test_productpage_through_the_compose_ingress(bookinfo: BookinfoOnCompose) -> None:
    bookinfo_tasks.check_productpage(bookinfo)


def test_mizzenctl_on_the_host_reaches_the_mesh_through_its_context(bookinfo: BookinfoOnCompose) -> None:
    assert re.search(r"^\*\s+compose\s+http://127\.0\.0\.1:", bookinfo.mizzenctl("context").stdout, re.MULTILINE)
    status = bookinfo.mizzenctl("proxy-status").stdout
    for proxy in expected_proxies():
        row = next((line for line in status.splitlines() if line.startswith(f"{proxy} ")), None)
        assert row is not None, status
        assert "mesh-workloads" in row and "SYNCED" in row and "STALE" not in row, status
    assert "bookinfo" in bookinfo.mizzenctl("get", "virtualservices").stdout
    assert "reviews" in bookinfo.mizzenctl("get", "destinationrules").stdout
    routes = bookinfo.mizzenctl("proxy-config", "routes", "productpage-v1.default").stdout
    assert "reviews.default.svc.cluster.local:9080" in routes
    clusters = bookinfo.mizzenctl("proxy-config", "clusters", "productpage-v1.default").stdout
    assert re.search(r"reviews\.default\.svc\.cluster\.local\s+9080\s+v3\s+outbound", clusters), clusters


def test_every_sidecar_holds_a_citadel_identity_and_refuses_plain_text(bookinfo: BookinfoOnCompose) -> None:
    mesh = bookinfo.mesh
    [citadel] = mesh.containers("citadel")
    root_serial = mesh.engine(
        "exec", citadel, "python", "-c",
        "from cryptography import x509; print(format(x509.load_pem_x509_certificate("
        "open('/var/lib/mizzen/citadel/root-cert.pem', 'rb').read()).serial_number, 'x'))").stdout.strip()
    for workload, account in (("productpage-v1", "bookinfo-productpage"), ("reviews-v2", "bookinfo-reviews")):
        [proxy] = mesh.containers(f"{workload}-proxy")
        # mizzenctl inside the proxy's container: its Envoy admin listens on the pod's loopback only.
        secrets = mesh.engine("exec", proxy, "mizzenctl", "proxy-config", "secret", f"{workload}.default",
                              "--admin", "127.0.0.1:15000").stdout
        assert re.search(rf"^default\s+Cert Chain\s+ACTIVE\s+true\s+.*spiffe://cluster\.local/ns/default/sa/{account}$",
                         secrets, re.MULTILINE), secrets
        assert re.search(rf"^ROOTCA\s+CA\s+ACTIVE\s+true\s+0*{root_serial}\s", secrets, re.MULTILINE), (root_serial,
                                                                                                      secrets)
    # STRICT mutual TLS: a plain-text request to the app's pod is captured into its sidecar and refused.
    [pod] = mesh.containers("productpage-v1-pod")
    address = mesh.engine("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                          pod).stdout.strip()
    with pytest.raises(httpx.TransportError):
        HTTP.get(f"http://{address}:9080/productpage", timeout=10)


@pytest.mark.parametrize("check", bookinfo_tasks.CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_bookinfo_task(bookinfo: BookinfoOnCompose, check: Callable[[BookinfoOnCompose], None]) -> None:
    check(bookinfo)


def test_pilot_killed_and_restarted_under_traffic(bookinfo: BookinfoOnCompose) -> None:
    """With pilot gone, every Envoy keeps serving the config it holds; restarted, pilot takes
    all proxies back and pushes new config."""
    mesh = bookinfo.mesh
    [pilot] = mesh.containers("pilot")
    with Traffic(bookinfo.ingress_url) as traffic:
        traffic.more(20)
        mesh.engine("kill", pilot)
        wait_until(lambda: not mesh.containers("pilot"), timeout=30, what="pilot's container to die")
        traffic.more(30)
        mesh.compose("start", "pilot")
        syncz = bookinfo.synced(timeout=90)
        traffic.more(20)
    assert traffic.failures == [], traffic.failures[:5]
    assert {row["pilot"] for row in syncz["proxies"]} == {syncz["pilot"]}
    bookinfo.apply(TASKS / "virtual-service-all-v1.yaml")
    assert bookinfo_tasks.versions(bookinfo, 10) == Counter({"v1": 10})


def test_a_second_pilot_takes_the_proxies_of_one_killed_under_traffic(bookinfo: BookinfoOnCompose) -> None:
    """`--scale pilot=2`: the proxies reach pilot by its compose name, which resolves to every
    replica, so those of a killed replica reconnect to the other."""
    mesh = bookinfo.mesh
    mesh.compose("up", "--detach", "--no-deps", "--no-recreate", "--scale", "pilot=2", "pilot")
    holder = ""
    try:
        replicas = wait_until(lambda: _healthy(bookinfo, "pilot", 2), timeout=90, what="two healthy pilots")
        holders = {row["pilot"].rpartition("-")[0] for row in bookinfo.synced()["proxies"]}
        holder = next(replica for replica in replicas if replica[:12] in holders)
        with Traffic(bookinfo.ingress_url) as traffic:
            traffic.more(20)
            mesh.engine("kill", holder)

            def moved() -> bool:
                rows = bookinfo.synced()["proxies"]
                return len(rows) == len(expected_proxies()) and not any(
                    row["pilot"].startswith(holder[:12]) for row in rows)

            wait_until(moved, timeout=90, interval=0.2, what="every proxy to reconnect to the other pilot")
            traffic.more(20)
        assert traffic.failures == [], traffic.failures[:5]
        bookinfo.apply(TASKS / "virtual-service-reviews-v3.yaml")
        assert bookinfo_tasks.versions(bookinfo, 10) == Counter({"v3": 10})
    finally:
        # Two pilots again, as `--scale pilot=2` asked.
        if holder:
            mesh.engine("start", holder)


def test_two_policy_replicas_keep_serving(bookinfo: BookinfoOnCompose) -> None:
    """`--scale policy=2`: the second replica comes up healthy beside the first while
    Bookinfo keeps answering, and going back to one loses nothing either."""
    mesh = bookinfo.mesh
    try:
        with Traffic(bookinfo.ingress_url) as traffic:
            traffic.more(10)
            mesh.compose("up", "--detach", "--no-deps", "--no-recreate", "--scale", "policy=2", "policy")
            wait_until(lambda: _healthy(bookinfo, "policy", 2), timeout=90, what="two healthy policy replicas")
            traffic.more(20)
            mesh.compose("up", "--detach", "--no-deps", "--no-recreate", "--scale", "policy=1", "policy")
            wait_until(lambda: _healthy(bookinfo, "policy", 1), timeout=90, what="one policy replica again")
            traffic.more(10)
        assert traffic.failures == [], traffic.failures[:5]
    finally:
        mesh.compose("up", "--detach", "--no-deps", "--no-recreate", "--scale", "policy=1", "policy")


def _healthy(bookinfo: BookinfoOnCompose, service: str, count: int) -> list[str] | None:
    running = bookinfo.mesh.containers(service)
    states = [bookinfo.mesh.engine("inspect", "--format", "{{.State.Health.Status}}", c).stdout.strip()
              for c in running]
    return running if len(running) == count and all(state == "healthy" for state in states) else None
