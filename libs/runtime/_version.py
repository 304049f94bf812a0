"""What a Mizzen process is: its version, as every monitoring server's `/version` answers
and `mizzenctl version` prints it (Istio's `istioctl version` reads the same from istiod)."""

from __future__ import annotations

import functools
import platform
from importlib import metadata

PACKAGE = "mizzen"
UNKNOWN = "unknown"


@functools.cache
def version() -> str:
    """The installed `mizzen` distribution's version; `unknown` when run from a tree that
    was never installed (no package metadata to read)."""
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return UNKNOWN


def build_info() -> dict[str, str]:
    """`/version`'s body: Istio's BuildInfo keys that apply to a Python build."""
    return {"version": version(), "python": platform.python_version()}
