"""`mizzenctl analyze --use-mesh=false`: files alone, istioctl's output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.mizzenctl.cli import main

BROKEN = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews}}]}]
---
apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: shop}
spec:
  hosts: [ratings]
  http: [{route: [{destination: {host: ratings2}}]}]
"""


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    return path


def test_errors_exit_79_and_print_istioctl_lines(broken: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "--use-mesh=false", "-f", str(broken)]) == 79
    out, err = capsys.readouterr()
    # The file's resource in another namespace is reported too: it was asked about by name.
    assert out.splitlines() == [f'Error [IST0101] (VirtualService shop/ratings {broken}[2]) Referenced host not '
                                'found: "ratings2"']
    assert "Analyzers found issues when analyzing namespace: default." in err


def test_json_output_and_thresholds(broken: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "--use-mesh=false", str(broken), "-o", "json", "--failure-threshold", "Error"]) == 79
    body = json.loads(capsys.readouterr().out)
    assert [(m["code"], m["origin"], m["reference"]) for m in body] == [
        ("IST0101", "VirtualService shop/ratings", f"{broken}[2]")]
    assert main(["analyze", "--use-kube=false", str(broken), "--output-threshold", "Info",
                 "--failure-threshold", "Error", "-n", "default"]) == 79


def test_clean_files_say_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = tmp_path / "clean.yaml"
    clean.write_text("---\n".join(BROKEN.split("---\n")[:2]))
    assert main(["analyze", "--use-mesh=false", "-A", "-f", str(clean)]) == 0
    assert "\u2714 No validation issues found when analyzing all namespaces." in capsys.readouterr().err


def test_unreadable_files_are_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [\n")
    assert main(["analyze", "--use-mesh=false", "-f", str(bad)]) == 1
    assert capsys.readouterr().err.startswith(f"error: {bad}")
