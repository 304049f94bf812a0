"""Hostile files in galley's directory: each rejected clearly and quickly, nothing that
was valid before is lost, and galley keeps serving."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.kv import config_entries
from tests.harness.mesh import Mesh
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

VALID = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: keep-me, namespace: default}
spec:
  hosts: [keep.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
"""

BOMB = "\n".join([
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    *[f"{chr(ord('b') + i)}: &{chr(ord('b') + i)} [" + ",".join([f"*{chr(ord('a') + i)}"] * 9) + "]"
      for i in range(8)],
])


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("huge.yaml", b"a: " + b"x" * (10 * 1024 * 1024), "byte limit"),
    ("garbage.yaml", bytes(range(256)) * 64, "binary data"),
    ("bomb.yaml", BOMB.encode(), "expands to more than"),
    ("deep.yaml", b"[" * 100_000 + b"]" * 100_000, "nesting deeper than"),
    ("latin1.yaml", "kind: caf\xe9".encode("latin-1"), "not UTF-8"),
    ("notyaml.yaml", b"kind: VirtualService\n  spec: [\n", "invalid YAML"),
])
def test_hostile_file_is_rejected_and_valid_config_survives(mesh: Mesh, tmp_path: Path, name: str,
                                                            content: bytes, reason: str) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "valid.yaml").write_text(VALID)
    galley = mesh.galley(config)
    wait_until(lambda: "ServiceEntry.default.keep-me" in config_entries(mesh.nats.url), what="the valid entry")
    (config / name).write_bytes(content)
    # How fast is bench material; here only that it is refused, by name, with the reason.
    wait_until(lambda: name in galley.process.log() and reason in galley.process.log(), timeout=30,
               what=f"galley to reject {name}")
    assert galley.process.alive()
    assert galley.get("/readyz").status_code == 200
    assert "ServiceEntry.default.keep-me" in config_entries(mesh.nats.url)
    # A later valid edit is still picked up.
    (config / "valid.yaml").write_text(VALID.replace("keep-me", "still-working"))
    wait_until(lambda: "ServiceEntry.default.still-working" in config_entries(mesh.nats.url),
               what="galley to keep publishing")


MESH = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    outboundTrafficPolicy: {mode: MODE}
"""


def test_a_bad_mesh_config_edit_keeps_the_last_good_one(mesh: Mesh, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "mesh.yaml").write_text(MESH.replace("MODE", "REGISTRY_ONLY"))
    galley = mesh.galley(config)
    key = "MeshConfig.istio-system.istio"
    wait_until(lambda: key in config_entries(mesh.nats.url), what="the mesh config")
    good = config_entries(mesh.nats.url)[key]
    (config / "mesh.yaml").write_text(MESH.replace("MODE", "SOMETIMES"))
    wait_until(lambda: "data.mesh.outboundTrafficPolicy.mode" in galley.process.log(), timeout=30,
               what="galley to refuse the edit, naming the field")
    assert "MeshConfig istio-system/istio" in galley.process.log()
    assert config_entries(mesh.nats.url)[key] == good
    assert b"REGISTRY_ONLY" in good[0]
    (config / "mesh.yaml").write_text(MESH.replace("MODE", "ALLOW_ANY"))
    wait_until(lambda: b"ALLOW_ANY" in config_entries(mesh.nats.url)[key][0], what="the next good mesh config")
