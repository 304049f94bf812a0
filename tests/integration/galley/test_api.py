"""mizzenctl apply / get / delete through galley's API, with real NATS and the real CLI."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from libs.bus import MESH_CONFIG, Bus, BusSettings
from tests.harness.http import HTTP
from tests.harness.mesh import GalleyService, Mesh
from tests.harness.nats import start_nats
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

REVIEWS = """\
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
"""

BAD_WEIGHTS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: bad
  namespace: shop
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 40
    - destination: {host: reviews, subset: v2}
      weight: 50
"""


def mizzenctl(galley: GalleyService, *args: str, token: str = "s3cret", stdin: str | None = None
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.mizzenctl", *args, "--galley", galley.api, "--token", token],
        check=False, input=stdin, capture_output=True, text=True, timeout=60,
    )


def kv_keys(nats_url: str) -> set[str]:
    async def read() -> set[str]:
        bus = await Bus.connect(BusSettings(url=nats_url), name="test")
        try:
            return set((await (await bus.kv(MESH_CONFIG)).entries()).keys())
        finally:
            await bus.close()

    return asyncio.run(read())


@pytest.fixture
def galley(mesh: Mesh, tmp_path: Path) -> GalleyService:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    return mesh.galley(None, "--api-token-file", str(token))


def test_apply_get_delete(galley: GalleyService, mesh: Mesh, tmp_path: Path) -> None:
    config = tmp_path / "reviews.yaml"
    config.write_text(REVIEWS)
    applied = mizzenctl(galley, "apply", "-f", str(config))
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.strip() == "VirtualService default/reviews created"
    wait_until(lambda: "VirtualService.default.reviews" in kv_keys(mesh.nats.url), what="the KV entry")
    assert mizzenctl(galley, "apply", "-f", str(config)).stdout.strip() == "VirtualService default/reviews unchanged"

    table = mizzenctl(galley, "get", "virtualservices")
    assert table.returncode == 0
    assert table.stdout.splitlines()[1].split() == ["default", "reviews", "reviews"]
    as_yaml = mizzenctl(galley, "get", "vs", "reviews", "-o", "yaml")
    assert "subset: v1" in as_yaml.stdout and "apiVersion: networking.istio.io/v1beta1" in as_yaml.stdout

    # A dry run deletes nothing and says what a delete would.
    dry = HTTP.post(f"{galley.api}/apis/v1/delete", params={"dryRun": "true"},
                    headers={"authorization": "Bearer s3cret"},
                    content=REVIEWS + "---\n" + REVIEWS.replace("name: reviews", "name: gone"), timeout=10)
    assert dry.status_code == 404
    assert dry.json() == {"deleted": ["VirtualService default/reviews"], "notFound": ["VirtualService default/gone"],
                          "errors": []}
    assert "VirtualService.default.reviews" in kv_keys(mesh.nats.url)

    deleted = mizzenctl(galley, "delete", "-f", "-", stdin=REVIEWS)
    assert deleted.returncode == 0
    assert deleted.stdout.strip() == "VirtualService default/reviews deleted"
    wait_until(lambda: "VirtualService.default.reviews" not in kv_keys(mesh.nats.url), what="the key to go")
    again = mizzenctl(galley, "delete", "-f", "-", stdin=REVIEWS)
    assert again.returncode == 1 and "not found" in again.stderr


def test_invalid_resource_is_refused_with_field_and_reason(galley: GalleyService, mesh: Mesh) -> None:
    result = mizzenctl(galley, "apply", "-f", "-", stdin=BAD_WEIGHTS)
    assert result.returncode == 1
    assert "VirtualService shop/bad: spec.http[0].route: weights sum to 90, must be 100" in result.stderr
    assert "VirtualService.shop.bad" not in kv_keys(mesh.nats.url)


def test_wrong_token_is_refused(galley: GalleyService) -> None:
    result = mizzenctl(galley, "apply", "-f", "-", stdin=REVIEWS, token="guess")
    assert result.returncode == 1
    assert "401" in result.stderr and "bearer token" in result.stderr


def test_applied_config_survives_a_galley_restart(galley: GalleyService, mesh: Mesh) -> None:
    assert mizzenctl(galley, "apply", "-f", "-", stdin=REVIEWS).returncode == 0
    wait_until(lambda: "VirtualService.default.reviews" in kv_keys(mesh.nats.url), what="the KV entry")
    galley.process.stop()
    token = Path(galley.process.argv[galley.process.argv.index("--api-token-file") + 1])
    restarted = mesh.galley(None, "--api-token-file", str(token), name="galley-2")
    table = mizzenctl(restarted, "get", "virtualservices")
    assert "reviews" in table.stdout
    wait_until(lambda: "VirtualService.default.reviews" in kv_keys(mesh.nats.url), timeout=30,
               what="galley to publish the change")


def test_apply_while_nats_is_down_fails_at_once_and_works_when_it_is_back(galley: GalleyService, mesh: Mesh,
                                                                           tmp_path: Path) -> None:
    config = tmp_path / "reviews.yaml"
    config.write_text(REVIEWS)
    mesh.nats.process.kill()
    # galley learns of the loss from its NATS client, within a ping or a write.
    wait_until(lambda: mizzenctl(galley, "apply", "-f", str(config)).returncode != 0, timeout=30,
               what="galley to notice NATS is gone")
    refused = mizzenctl(galley, "apply", "-f", str(config))
    assert refused.returncode == 1
    assert "cannot reach NATS" in refused.stderr and "nothing was stored" in refused.stderr, refused.stderr
    assert "created" not in refused.stdout

    start_nats(mesh.group, mesh.nats.store_dir, port=mesh.nats.port, name="nats-again")
    wait_until(lambda: mizzenctl(galley, "apply", "-f", str(config)).returncode == 0, timeout=30,
               what="apply to work again once NATS is back")
    wait_until(lambda: "VirtualService.default.reviews" in kv_keys(mesh.nats.url), timeout=30,
               what="galley to publish the change")
