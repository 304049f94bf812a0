"""Real servers from Debian that some tests drive (prometheus, redis-server, chromium, ...).

`.ci/run` installs them as root; under CI=true a missing one fails the test, since a
skipped test there would read as a pass.  Elsewhere the test skips, naming the package."""

from __future__ import annotations

import os
import shutil

import pytest


def debian_tool(name: str, package: str) -> str:
    """The path of `name`, or a skip (a failure under CI=true) naming its Debian package."""
    found = shutil.which(name) or (f"/usr/sbin/{name}" if os.access(f"/usr/sbin/{name}", os.X_OK) else None)
    if found is None:
        message = f"{name} is not installed (Debian package {package}; .ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found
