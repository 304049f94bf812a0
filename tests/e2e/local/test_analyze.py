"""`mizzenctl analyze` on Bookinfo in the local mesh: a deliberately broken file, analysed
over the running mesh before it is applied, then applied (galley warns, and stores it)
and found by the live analysis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.local.conftest import SAMPLES
from tests.harness.local_mesh import LocalMesh

pytestmark = pytest.mark.e2e

# Istio's reviews-v3 task file with two slips: a subset no DestinationRule defines, and a
# misspelt mirror host.
BROKEN = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v4
    mirror:
      host: ratingz
"""
SUBSET = 'Referenced host+subset in destinationrule not found: "reviews+v4"'
MIRROR = 'Referenced mirror host not found: "ratingz"'


@pytest.fixture
def broken(bookinfo: LocalMesh, tmp_path: Path) -> Iterator[Path]:
    bookinfo.apply(SAMPLES / "virtual-service-all-v1.yaml")
    path = tmp_path / "reviews-broken.yaml"
    path.write_text(BROKEN)
    yield path


def errors_about(output: str, resource: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Error [") and f"({resource}" in line]


def test_analyze_finds_the_broken_file_before_and_after_it_is_applied(bookinfo: LocalMesh, broken: Path) -> None:
    # Before: the file over the running mesh; only its own resource is wrong.
    before = bookinfo.mizzenctl("analyze", "-f", str(broken), check=False)
    assert before.returncode == 79, before.stderr
    assert errors_about(before.stdout, "VirtualService default/reviews") == [
        f"Error [IST0101] (VirtualService default/reviews {broken}[0]) {SUBSET}",
        f"Error [IST0101] (VirtualService default/reviews {broken}[0]) {MIRROR}",
    ]
    # The rest of Bookinfo's routes reach services and subsets that exist; what the live
    # registry says of Istio's destination-rule-all.yaml is true here too: no ratings v2 runs.
    assert not [line for line in before.stdout.splitlines() if "[IST0101]" in line and str(broken) not in line]
    assert "Error [IST0173] (DestinationRule default/ratings) The Subset v2 defined in the DestinationRule does " \
           "not select any pods." in before.stdout

    # Applying it is not refused: galley stores it and warns with the same findings.
    applied = bookinfo.mizzenctl("apply", "-f", str(broken), check=False)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.strip() == "VirtualService default/reviews configured"
    assert f"warning: Error [IST0101] (VirtualService default/reviews) {SUBSET}" in applied.stderr.splitlines()

    # After: the live mesh alone says the same, without a file to point at.
    after = bookinfo.mizzenctl("analyze", "-o", "json", check=False)
    assert after.returncode == 79
    found = {(m["origin"], m["message"]) for m in json.loads(after.stdout) if m["code"] == "IST0101"}
    assert found == {("VirtualService default/reviews", MIRROR), ("VirtualService default/reviews", SUBSET)}
    clean = bookinfo.mizzenctl("analyze", "-n", "istio-system", check=False)
    assert clean.returncode == 0, clean.stdout
