"""What a fresh interpreter has imported after some statements: for tests that hold a
command or a service to the libraries it may load at start."""

from __future__ import annotations

import subprocess
import sys


def modules_loaded_by(statements: str) -> set[str]:
    probe = f"import sys\n{statements}\nprint(' '.join(sys.modules))\n"
    return set(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                              timeout=120).stdout.split())
