"""An agent handed app probers it cannot use stops at start, saying which setting is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_invalid_app_probers_stop_the_agent_naming_the_setting(tmp_path: Path) -> None:
    env = {**os.environ, "ISTIO_KUBE_APP_PROBERS": '{"/app-health/web/readyz": {'}
    result = subprocess.run([sys.executable, "-m", "services.agent", "--state-dir", str(tmp_path), "--log-json"],
                            env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "service stopped on a fatal error" in result.stderr
    assert ("setting kube_app_probers (from --kube-app-probers, MIZZEN_KUBE_APP_PROBERS or "
            "ISTIO_KUBE_APP_PROBERS): not valid JSON") in result.stderr
    assert not (tmp_path / "envoy-bootstrap.json").exists(), "nothing started"
