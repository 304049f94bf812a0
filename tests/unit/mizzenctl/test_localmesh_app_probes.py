"""The local mesh's agents get their app's probes as an injected pod's agent would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.agent.app_probers import AppProbe, HttpGet, parse_app_probers
from tools.localmesh.plan import MeshOptions, workloads


@pytest.mark.parametrize(("capture", "port"), [("iptables", 9080), ("proxy", 19080)])
def test_every_bookinfo_agent_probes_its_apps_health(capture: str, port: int) -> None:
    specs, _ = workloads(MeshOptions(Path("/tmp/unused"), capture=capture))
    proxies = {spec.name: spec for spec in specs if spec.name.endswith("-proxy")}
    assert len(proxies) == 6
    for name, spec in proxies.items():
        container = name.split("-")[0]
        probes = parse_app_probers(spec.env["ISTIO_KUBE_APP_PROBERS"])
        assert probes == {path: AppProbe(path, HttpGet(port, "/health"), 1)
                          for path in (f"/app-health/{container}/readyz", f"/app-health/{container}/livez")}
        assert json.loads(spec.env["ISTIO_KUBE_APP_PROBERS"])[f"/app-health/{container}/readyz"]["httpGet"] == {
            "path": "/health", "port": port, "scheme": "HTTP"}
