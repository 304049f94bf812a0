"""A running control plane for translation tests: galley watching a directory, pilot,
and helpers to change config and wait until every proxy has ACKed it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from libs.config import parse_text
from tests.harness.kv import config_entries, config_revision
from tests.harness.mesh import GalleyService, Mesh, PilotService, Proxy
from tests.harness.waiting import NotReady, wait_until


@dataclass
class ConfigEnv:
    mesh: Mesh
    config_dir: Path
    galley: GalleyService
    pilot: PilotService
    proxies: list[Proxy] = field(default_factory=list)
    _written: set[Path] = field(default_factory=set)

    def apply(self, name: str, text: str, *, invalid_ok: bool = False) -> None:
        """Write `name`.yaml and wait until galley published it and every proxy ACKed it.

        Config galley would refuse fails here, naming why, unless `invalid_ok`: a test
        that meant to change something must not pass on the config it had before."""
        if not invalid_ok:
            errors = parse_text(text, name).errors()
            assert not errors, f"{name}.yaml is not valid config: {errors}"
        path = self.config_dir / f"{name}.yaml"
        # Atomically: galley polls the directory and must never read a half-written file
        # (it would delete whatever the missing half held).  Galley skips dot-files.
        staging = self.config_dir / f".{name}.yaml.tmp"
        staging.write_text(text)
        os.replace(staging, path)
        self._written.add(path)
        expected = {r.key: json.loads(r.to_json()) for _, r in parse_text(text, name).resources}
        wait_until(lambda: self._published(expected), timeout=15, what=f"galley to publish {name}")
        self.sync()

    def remove(self, name: str, *, sync: bool = True) -> None:
        """Delete `name`.yaml and wait until galley deleted its resources and (unless `sync`
        is false: pilot may be down) every proxy ACKed that."""
        path = self.config_dir / f"{name}.yaml"
        keys = {r.key for _, r in parse_text(path.read_bytes(), name).resources}
        path.unlink()
        self._written.discard(path)
        wait_until(lambda: not keys & config_entries(self.mesh.nats.url).keys(), timeout=15,
                   what=f"galley to delete {name}")
        if sync:
            self.sync()

    def checkpoint(self) -> frozenset[Path]:
        """The config files written so far (a fixture's config, kept by `clear`)."""
        return frozenset(self._written)

    def clear(self, keep: frozenset[Path] = frozenset()) -> None:
        for path in sorted(self._written - keep):
            self.remove(path.stem)

    def _published(self, expected: dict[str, object]) -> bool:
        entries = config_entries(self.mesh.nats.url)
        return all(key in entries and json.loads(entries[key][0]) == body for key, body in expected.items())

    def sync(self, timeout: float = 20) -> str:
        """Wait until pilot serves the latest KV revision and every proxy ACKed it."""
        revision = config_revision(self.mesh.nats.url)
        last: dict[str, object] = {}

        def converged() -> str | None:
            state = self.pilot.get("/debug/syncz").json()
            last["state"] = state
            version = state["version"] or ""
            if int(version.split(".")[0] or 0) < revision:
                return None
            connected = {p["proxy"]: p for p in state["proxies"]}
            for proxy in self.proxies:
                entry = connected.get(proxy.node_id)
                if entry is None or entry["version"] != version:
                    return None
                if any(watch["awaiting_ack"] for watch in entry["types"].values()):
                    return None
            return str(version)

        try:
            return wait_until(converged, timeout=timeout, what=f"proxies to ACK revision {revision}")
        except NotReady as exc:
            raise NotReady(f"{exc}; pilot's last /debug/syncz: {last.get('state')}") from None

    def drained(self) -> None:
        """Wait until no proxy serves a connection under a replaced listener (the agent's
        drain time is 1s): every request from now on meets the config last ACKed."""
        wait_until(lambda: all(proxy.admin.draining() == 0 for proxy in self.proxies), timeout=15,
                   what="replaced listeners to drain")

    def nacks(self) -> list[str]:
        state = self.pilot.get("/debug/syncz").json()
        return [f"{p['proxy']} {t}: {w['last_nack']['error']}" for p in state["proxies"]
                for t, w in p["types"].items() if w["last_nack"]]

    @classmethod
    def start(cls, mesh: Mesh, config_dir: Path, *, galley_args: tuple[str, ...] = (),
              pilot_args: tuple[str, ...] = ()) -> ConfigEnv:
        """Galley on `config_dir` and a pilot, started together (each takes ~2 s to come up)."""
        config_dir.mkdir(exist_ok=True)
        galley = mesh.galley(config_dir, *galley_args, wait=False)
        pilot = mesh.pilot(*pilot_args, wait=False)
        galley.wait_ready()
        pilot.wait_ready()
        return cls(mesh, config_dir, galley, pilot)

    def add_proxy(self, proxy: Proxy) -> Proxy:
        self.add_proxies(proxy)
        return proxy

    def add_proxies(self, *proxies: Proxy) -> None:
        """Proxies started with `wait_live=False` (so they start together): each LIVE, then
        one wait until all of them ACKed the latest config."""
        for proxy in proxies:
            proxy.wait_live()
        self.proxies.extend(proxies)
        self.sync()
