"""The agent's workload registration (mesh-workloads) across NATS restarts, with a real
nats-server: the entry is there again after NATS comes back, with its storage or without."""

from __future__ import annotations

import asyncio
import shutil
import threading

import nats
import nats.errors
import pytest

from libs.bus import MESH_WORKLOADS
from libs.config.workloads import TTL_S
from services.agent.registration import Registrar
from services.agent.settings import AgentSettings
from tests.harness.nats import NatsServer, start_nats
from tests.harness.processes import ProcessGroup
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration


async def registered(url: str, key: str) -> bool:
    """Whether `key` is in mesh-workloads now, read without creating the bucket (the agent
    must do that itself after NATS lost its storage)."""
    client = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        bucket = await client.jetstream().key_value(MESH_WORKLOADS)
        await bucket.get(key)
        return True
    except nats.errors.Error:
        return False
    finally:
        await client.close()


def restart(processes: ProcessGroup, nats: NatsServer, name: str, *, lose_storage: bool) -> None:
    nats.process.kill()
    if lose_storage:
        shutil.rmtree(nats.store_dir)
    nats.process = start_nats(processes, nats.store_dir, port=nats.port, name=name).process


def test_the_entry_is_back_after_nats_restarts_with_and_without_its_storage(processes: ProcessGroup,
                                                                             nats: NatsServer) -> None:
    settings = AgentSettings(registry_nats_url=nats.url, registry_refresh_s=0.2, pod_name="ratings-v1",
                             namespace="default", instance_ip="127.0.0.9", labels=("app=ratings",))
    registrar = Registrar(settings)
    key = registrar.entry.key
    # The registrar runs on a loop of its own, as in the agent, while the test looks from outside.
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="agent-loop", daemon=True)
    thread.start()
    running = asyncio.run_coroutine_threadsafe(registrar.run(), loop)
    try:
        wait_until(lambda: asyncio.run(registered(nats.url, key)), what="the first registration")
        # Storage kept (JetStream's file store): nothing to redo, the entry outlives the restart.
        restart(processes, nats, "nats-again", lose_storage=False)
        assert asyncio.run(registered(nats.url, key))
        # Storage lost: no bucket at all until the agent creates it again, well within the TTL.
        restart(processes, nats, "nats-empty", lose_storage=True)
        wait_until(lambda: asyncio.run(registered(nats.url, key)), timeout=TTL_S / 2,
                   what="the agent to register again in a NATS that lost its storage")
        assert not running.done()
    finally:
        running.cancel()
        asyncio.run_coroutine_threadsafe(registrar.deregister(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
