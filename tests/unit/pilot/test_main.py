"""`python -m services.pilot` loads gRPC with its transport setting in place."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from services.pilot.__main__ import GRPC_EXPERIMENTS

# Records GRPC_EXPERIMENTS as it is the moment anything first imports grpc (which reads it
# then, once), and runs pilot's entry point as far as `--help`.
SPY = """
import importlib.abc, os, runpy, sys
seen = []

class Spy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "grpc" and not seen:
            seen.append(os.environ.get("GRPC_EXPERIMENTS", "<unset>"))
        return None

sys.meta_path.insert(0, Spy())
sys.argv = ["pilot", "--help"]
try:
    runpy.run_module("services.pilot", run_name="__main__")
except SystemExit:
    pass
print("seen by grpc:", repr(seen[0]) if seen else "<grpc never imported>")
"""


def _seen_by_grpc(**environ: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "GRPC_EXPERIMENTS"} | environ
    done = subprocess.run([sys.executable, "-c", SPY], env=env, capture_output=True, text=True, timeout=60,
                          check=True)
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("seen by grpc: '"), last
    return last.removeprefix("seen by grpc: ")[1:-1]


def test_grpc_loads_with_the_older_listener() -> None:
    assert _seen_by_grpc() == GRPC_EXPERIMENTS == "-event_engine_listener"


@pytest.mark.parametrize("operator", ["", "-event_engine_client"])
def test_the_operators_value_wins(operator: str) -> None:
    assert _seen_by_grpc(GRPC_EXPERIMENTS=operator) == operator
