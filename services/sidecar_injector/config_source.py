"""The injector's two configs, each kept current by one task.

- `InjectionConfigFiles`: the `config` and `values` keys of Istio's `istio-sidecar-injector`
  ConfigMap, mounted as files (as Istio's injector reads them, and as kube-inject's
  --injectConfigFile/--valuesFile take them).  Files rather than mesh-config: only the
  injector and kube-inject read this config, so galley would carry it for no one else.
  A changed file is re-read; a broken one is logged and counted, and the last good config
  keeps serving (at start there is none: the service does not start).
- `MeshConfigWatch`: the `MeshConfig` named `istio` in the system namespace, from
  mesh-config, as galley validated it (absent: Istio's defaults).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import structlog
from prometheus_client import CollectorRegistry, Counter

from libs.bus import MESH_CONFIG, Bus, KvMirror, config_key
from libs.config import MESH_CONFIG_KIND, Resource
from libs.inject import InjectionConfig, InvalidConfig, MeshSettings, load_injection_config
from libs.runtime import Readiness, Supervisor

log = structlog.get_logger(__name__)

MESH_SYNCED = "mesh-config-synced"
MESH_CONFIG_NAME = "istio"


def _read(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text()
    except OSError as exc:
        raise InvalidConfig(str(path), "", f"cannot be read: {exc.strerror}") from exc


class InjectionConfigFiles:
    def __init__(self, config_file: Path | None, values_file: Path | None, registry: CollectorRegistry, *,
                 poll_interval_s: float = 1.0) -> None:
        self.config_file = config_file
        self.values_file = values_file
        self.poll_interval_s = poll_interval_s
        self.errors = Counter("sidecar_injector_config_errors", "injection config reloads refused as invalid",
                              registry=registry)
        self._seen: tuple[str | None, str | None] = (None, None)
        self.current = self.load()

    def _texts(self) -> tuple[str | None, str | None]:
        return _read(self.config_file), _read(self.values_file)

    def load(self, texts: tuple[str | None, str | None] | None = None) -> InjectionConfig:
        """Parse both files (read now unless given); InvalidConfig names the file and the field."""
        texts = self._texts() if texts is None else texts
        config = load_injection_config(*texts, source=str(self.config_file or self.values_file or "defaults"))
        for warning in config.warnings:
            log.warning("injection config", warning=warning)
        self._seen = texts
        return config

    def reload(self) -> bool:
        """Re-read the files if they changed; True when a new config is in force."""
        try:
            texts = self._texts()
            if texts == self._seen:
                return False
            # Seen even if refused: a broken file is reported once, not on every poll.
            self._seen = texts
            self.current = self.load(texts)
        except InvalidConfig as exc:
            self.errors.inc()
            log.error("injection config refused; the last good one stays in force", error=str(exc))
            return False
        log.info("injection config reloaded", policy=self.current.policy)
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval_s)
            await asyncio.to_thread(self.reload)


class MeshConfigWatch:
    def __init__(self, system_namespace: str, readiness: Readiness,
                 on_change: Callable[[MeshSettings], None] = lambda _: None) -> None:
        self.key = config_key(MESH_CONFIG_KIND, system_namespace, MESH_CONFIG_NAME)
        self.readiness = readiness
        readiness.require(MESH_SYNCED)
        self.current = MeshSettings()
        self.synced = False
        self._on_change = on_change
        self._mirror: KvMirror | None = None

    def _changed(self) -> None:
        assert self._mirror is not None
        resources = self._mirror.decode(Resource.from_json)
        self.current = MeshSettings.from_spec(resources[0].spec) if resources else MeshSettings()
        self.synced = True
        self.readiness.mark(MESH_SYNCED)
        log.info("mesh config in force", trust_domain=self.current.trust_domain, revision=self._mirror.revision)
        self._on_change(self.current)

    async def start(self, supervisor: Supervisor, bus: Bus) -> None:
        self._mirror = KvMirror(await bus.kv(MESH_CONFIG), on_change=self._changed, keys=self.key)
        supervisor.start("mesh-config-watch", self._mirror.run)
