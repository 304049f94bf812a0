"""The Mizzen image the compose mesh runs keeps the image issue's promises: a non-root
default user, no compiler and no package or pip caches left in it, and its size reported.
Run in a container of its own with no network."""

from __future__ import annotations

import json

import pytest

from tools.containers import images
from tools.containers.engine import Engine

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

# What a build could leave behind: compilers, pip's and apt's caches, the staged wheels.
LEFTOVERS = ("for c in gcc cc c++ g++ clang make; do command -v $c; done; "
             "ls -d /root/.cache/pip /var/lib/mizzen/.cache /var/cache/apt/archives/*.deb /wheels /tmp/pip-* "
             "2>/dev/null; true")


def test_the_image_is_non_root_and_holds_no_build_leftovers(engine: Engine, built_images: images.Images,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    config = json.loads(engine("image", "inspect", built_images.mizzen).stdout)[0]["Config"]
    assert config["User"] not in ("", "0", "root"), config["User"]
    who = engine("run", "--rm", "--network", "none", "--entrypoint", "id", built_images.mizzen, "-u").stdout
    assert who.strip() == "10001"
    found = engine("run", "--rm", "--network", "none", "--user", "0", "--entrypoint", "sh", built_images.mizzen,
                   "-c", LEFTOVERS).stdout.split()
    assert found == []
    with capsys.disabled():
        print(f"\n{built_images.mizzen}: {images.image_size(engine, built_images.mizzen) / 1e6:.0f} MB")
