"""Reading mesh-config from tests (each call opens and closes its own connection)."""

from __future__ import annotations

import asyncio

from libs.bus import MESH_CONFIG, Bus, BusSettings


def config_entries(nats_url: str) -> dict[str, tuple[bytes, int]]:
    """key -> (value, revision) of every live mesh-config entry."""

    async def read() -> dict[str, tuple[bytes, int]]:
        bus = await Bus.connect(BusSettings(url=nats_url), name="test")
        try:
            entries = await (await bus.kv(MESH_CONFIG)).entries()
            return {key: (entry.value, entry.revision) for key, entry in entries.items()}
        finally:
            await bus.close()

    return asyncio.run(read())


def config_revision(nats_url: str) -> int:
    """The bucket's latest revision (deletes included), as pilot versions config."""

    async def read() -> int:
        bus = await Bus.connect(BusSettings(url=nats_url), name="test")
        try:
            return await (await bus.kv(MESH_CONFIG)).last_revision()
        finally:
            await bus.close()

    return asyncio.run(read())


def config_size(nats_url: str) -> int:
    """Entries in mesh-config (delete markers included)."""

    async def read() -> int:
        bus = await Bus.connect(BusSettings(url=nats_url), name="test")
        try:
            return await (await bus.kv(MESH_CONFIG)).size()
        finally:
            await bus.close()

    return asyncio.run(read())
