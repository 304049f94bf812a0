"""The scale benchmark's stand-in for agents: refreshing registrations while endpoint changes
come and go must not bring back a workload that left."""

from __future__ import annotations

from bench.pilot.scale_mesh import MeshScale, MeshWriter
from tests.harness.nats import NatsServer


async def test_a_refresh_never_brings_back_a_workload_that_left(nats: NatsServer) -> None:
    scale = MeshScale(services=5, endpoints=2)
    writer = await MeshWriter.connect(nats.url)
    try:
        for workload in scale.workloads():
            await writer.register(workload)
        gone = scale.workload(0, 2)
        await writer.register(gone)
        # A refresh took its keys, then the workload left before its turn came.
        keys = sorted(writer._registered)
        await writer.unregister(gone)
        await writer.rewrite(keys)
        assert set(await writer.registry.keys()) == {w.key for w in scale.workloads()}
        assert writer.refreshes == len(keys)
    finally:
        await writer.close()
