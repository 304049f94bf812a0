"""The local mesh's agents get their app's probes as an injected pod's agent would: from
the injector's own rewrite of a Bookinfo container's probes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.agent.app_probers import AppProbe, HttpGet, TcpSocket, parse_app_probers
from tools.localmesh.plan import MeshOptions, workloads


@pytest.mark.parametrize(("capture", "port"), [("iptables", 9080), ("proxy", 19080)])
def test_every_bookinfo_agent_probes_its_apps_health(capture: str, port: int) -> None:
    specs, _ = workloads(MeshOptions(Path("/tmp/unused"), capture=capture))
    proxies = {spec.name: spec for spec in specs if spec.name.endswith("-proxy")}
    assert len(proxies) == 6
    for name, spec in proxies.items():
        container = name.split("-")[0]
        probes = parse_app_probers(spec.env["ISTIO_KUBE_APP_PROBERS"])
        ready, live = f"/app-health/{container}/readyz", f"/app-health/{container}/livez"
        assert probes == {ready: AppProbe(ready, HttpGet(port, "/health"), 1), live: AppProbe(live, TcpSocket(port), 1)}
        assert json.loads(spec.env["ISTIO_KUBE_APP_PROBERS"])[ready]["httpGet"] == {"path": "/health", "port": port}
