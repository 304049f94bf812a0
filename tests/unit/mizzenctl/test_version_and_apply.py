"""`mizzenctl version`'s lines in istioctl's shape, and `apply` refusing kinds Mizzen does
not serve before anything reaches galley (`--skip-unsupported` for the old behaviour)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tools.mizzenctl import resources, version
from tools.mizzenctl.cli import main


def versions(components: dict[str, str], proxies: list[tuple[str, str]]) -> dict[str, Any]:
    return {"clientVersion": {"version": "0.2.0", "python": "3.11.7"},
            "meshVersion": [{"Component": name, "URL": "", "Info": {"version": v}} for name, v in components.items()],
            "dataPlaneVersion": [{"ID": f"sidecar~10.0.0.{i}~p{i}.default~default.svc.cluster.local",
                                  "Name": f"p{i}.default", "MizzenVersion": agent, "EnvoyVersion": envoy}
                                 for i, (agent, envoy) in enumerate(proxies)]}


def test_version_lines_count_the_proxies_per_version() -> None:
    found = versions({"pilot": "0.2.0", "galley": "0.2.0"}, [("0.2.0", "1.40.0")] * 3 + [("0.1.0", "1.40.0")])
    assert version.render(found, "short") == (
        "client version: 0.2.0\n"
        "control plane version: 0.2.0\n"
        "data plane version: 0.1.0 (1 proxies), 0.2.0 (3 proxies)\n"
        "envoy version: 1.40.0 (4 proxies)\n")


def test_a_control_plane_mid_upgrade_shows_both_versions_and_unknown_agents() -> None:
    found = versions({"pilot": "0.2.0", "citadel": "0.1.0"}, [("", "1.39.0")])
    assert version.summarize(found)[1:] == ["control plane version: 0.1.0, 0.2.0",
                                            "data plane version: unknown (1 proxies)",
                                            "envoy version: 1.39.0 (1 proxies)"]


def test_version_without_remote_asks_nobody(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version", "--no-remote", "--pilot", "http://127.0.0.1:1"]) == 0
    assert capsys.readouterr().out.startswith("client version: ")


MIXED = """\
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: lua, namespace: default}
spec: {}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews}}]}]
"""


def test_unsupported_kinds_are_named_with_their_file(tmp_path: Path) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text(MIXED)
    assert resources.unsupported_kinds([(str(path), path.read_bytes())], "default") == [
        f"{path}[0]: EnvoyFilter default/lua: unsupported kind EnvoyFilter (networking.istio.io/v1alpha3)"]


def test_apply_refuses_an_unsupported_kind_before_galley_is_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text(MIXED)
    asked: list[str] = []

    def request(args: Any, method: str, route: str, **kwargs: Any) -> httpx.Response:
        asked.append(route)
        return httpx.Response(200, json={"applied": [{"resource": "VirtualService default/reviews",
                                                      "result": "created"}],
                                         "errors": [], "warnings": [], "valid": [],
                                         "unsupported": ["request[0]: EnvoyFilter default/lua: unsupported kind "
                                                         "EnvoyFilter (networking.istio.io/v1alpha3)"]})

    monkeypatch.setattr(resources, "request", request)
    assert main(["apply", "-f", str(path), "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "error: " + f"{path}[0]: EnvoyFilter default/lua: unsupported kind EnvoyFilter" in err
    assert "nothing was applied (--skip-unsupported applies the rest)" in err
    assert asked == []
    assert main(["apply", "--skip-unsupported", "-f", str(path), "--state-dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out == "VirtualService default/reviews created\n"
    assert err == f"skipped: {path}[0]: EnvoyFilter default/lua: unsupported kind EnvoyFilter " \
                  "(networking.istio.io/v1alpha3)\n"
    assert asked == ["/apis/v1/apply"]


def test_validate_still_lists_unsupported_kinds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text(MIXED)
    assert main(["validate", "-v", "-f", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == "1 valid resource(s), 0 error(s), 1 of unsupported kinds skipped\n"
    assert "skipped: " in err and "EnvoyFilter default/lua" in err
