"""Two galley replicas: one writes; kill it and the other takes over, losing nothing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from libs.bus import MESH_CONFIG, Bus, BusSettings
from services.galley.leader import Lease
from tests.harness.http import HTTP
from tests.harness.mesh import Mesh
from tests.harness.nats import NatsServer
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

SE = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: svc-{i}, namespace: default}}
spec:
  hosts: [svc-{i}.example.com]
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  resolution: DNS
"""


def _config(nats_url: str) -> dict[str, bytes]:
    async def read() -> dict[str, bytes]:
        bus = await Bus.connect(BusSettings(url=nats_url), name="test")
        try:
            return {k: e.value for k, e in (await (await bus.kv(MESH_CONFIG)).entries()).items()}
        finally:
            await bus.close()

    return asyncio.run(read())


def _leader(url: str) -> bool:
    return "galley_leader 1.0" in HTTP.get(f"{url}/metrics", timeout=2).text


def test_leader_failover_loses_nothing(mesh: Mesh, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    for i in range(20):
        (config / f"se-{i}.yaml").write_text(SE.format(i=i))
    first = mesh.galley(config, name="galley-a")
    wait_until(lambda: _leader(first.monitoring), what="galley-a to lead")
    second = mesh.galley(config, name="galley-b")
    wait_until(lambda: len(_config(mesh.nats.url)) == 20, what="20 resources published")
    assert not _leader(second.monitoring), "exactly one replica leads"

    first.process.kill()
    killed_at = time.monotonic()
    # Change config while nobody leads: the new leader must publish it.
    (config / "se-20.yaml").write_text(SE.format(i=20))
    (config / "se-0.yaml").unlink()
    wait_until(lambda: _leader(second.monitoring), timeout=10, what="galley-b to take over")
    took_over = time.monotonic() - killed_at
    assert took_over < 5, f"takeover took {took_over:.1f}s"
    expected = {f"ServiceEntry.default.svc-{i}" for i in range(1, 21)}
    wait_until(lambda: set(_config(mesh.nats.url)) == expected, what="the new leader to converge")


def test_restart_removes_keys_whose_files_went_away(mesh: Mesh, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    for i in range(3):
        (config / f"se-{i}.yaml").write_text(SE.format(i=i))
    galley = mesh.galley(config, name="galley-a")
    wait_until(lambda: len(_config(mesh.nats.url)) == 3, what="3 resources published")
    galley.process.stop()
    (config / "se-1.yaml").unlink()
    mesh.galley(config, name="galley-b")
    wait_until(lambda: set(_config(mesh.nats.url)) == {"ServiceEntry.default.svc-0", "ServiceEntry.default.svc-2"},
               what="the stale key to be deleted on start")


async def test_a_replica_restarted_under_its_own_name_takes_its_lease_back_at_once(nats: NatsServer) -> None:
    """Its earlier run died holding the lease: waiting `ttl_s` for it to expire would hold
    every write back that long.  Another replica still has to wait it out."""
    bus = await Bus.connect(BusSettings(url=nats.url), name="test")
    try:
        bucket = await bus.kv("lease-test")
        earlier = Lease(bucket, "galley", ttl_s=3600, renew_s=1)
        assert await earlier._try_acquire()
        other = Lease(bucket, "galley-b", ttl_s=3600, renew_s=1)
        assert not await other._try_acquire() and not await other._try_acquire()
        again = Lease(bucket, "galley", ttl_s=3600, renew_s=1)
        assert await again._try_acquire()
        # The earlier run, were it still alive, loses at its next renewal.
        assert not await earlier._renew()
    finally:
        await bus.close()
