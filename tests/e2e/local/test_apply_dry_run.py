"""`mizzenctl apply --dry-run` against the running local mesh, as a user types it: per
proxy whose Envoy config would change, a diff of what pilot would send it, and nothing
stored or pushed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.local.conftest import SAMPLES
from tests.harness.http import HTTP
from tests.harness.kv import config_revision
from tests.harness.local_mesh import LocalMesh

pytestmark = pytest.mark.e2e

SIDECARS = {"productpage-v1.default", "details-v1.default", "reviews-v1.default", "reviews-v2.default",
            "reviews-v3.default", "ratings-v1.default"}
REVIEWS_V3 = "outbound|9080|v3|reviews.default.svc.cluster.local"
# A proxy's summary line: `<proxy>: routes 1 changed`.
SUMMARY = re.compile(r"^([\w.-]+): ((?:clusters|endpoints|listeners|routes) .*)$")
REVIEWS_WITHOUT_V3 = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
"""


def untouched(mesh: LocalMesh) -> dict[str, Any]:
    """What a dry run must leave as it is: the stored config, pilot's version and what it
    sent each proxy."""
    state = mesh.state()
    syncz = HTTP.get(f"{state.pilot}/debug/syncz", timeout=5).json()
    return {"revision": config_revision(state.nats), "version": syncz["version"],
            "sent": {p["name"]: {t: (s["sent"], s["nonce"]) for t, s in p["types"].items()} for p in syncz["proxies"]}}


def summaries(stdout: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for line in stdout.splitlines() if (m := SUMMARY.match(line))}


def diff_headers(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("--- ")]


def test_a_virtual_service_shows_the_route_change_of_every_sidecar_and_stores_nothing(bookinfo: LocalMesh) -> None:
    before = untouched(bookinfo)
    result = bookinfo.mizzenctl("apply", "--dry-run", "-f", str(SAMPLES / "virtual-service-reviews-v3.yaml"))
    assert result.stdout.startswith("VirtualService default/reviews valid (dry run)\n")
    # A mesh VirtualService: every sidecar's outbound routes, no gateway's.
    assert summaries(result.stdout) == dict.fromkeys(SIDECARS, "routes 1 changed")
    headers = diff_headers(result.stdout)
    assert len(headers) == len(SIDECARS)
    assert all(re.fullmatch(r"--- [\w.-]+\.default routes \S+ \(now\)", header) for header in headers), headers
    added = [line for line in result.stdout.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert any(f'"cluster": "{REVIEWS_V3}"' in line for line in added)
    assert result.stdout.splitlines()[-1] == "6 of 8 proxies' config would change (dry run, nothing was stored)"
    assert untouched(bookinfo) == before
    assert bookinfo.mizzenctl("get", "virtualservices", "reviews", check=False).returncode == 1


def test_a_dropped_subset_shows_its_cluster_and_endpoints_going(bookinfo: LocalMesh, tmp_path: Path) -> None:
    before = untouched(bookinfo)
    change = tmp_path / "reviews-dr.yaml"
    change.write_text(REVIEWS_WITHOUT_V3)
    result = bookinfo.mizzenctl("apply", "--dry-run", "-f", str(change))
    found = summaries(result.stdout)
    # Every proxy that sees reviews (the sidecars, the gateways) loses exactly that cluster.
    assert SIDECARS | {"istio-ingressgateway.istio-system"} <= found.keys()
    assert set(found.values()) == {"clusters 1 removed; endpoints 1 removed"}
    for proxy in found:
        assert f"--- {proxy} clusters {REVIEWS_V3} (now)" in result.stdout
        assert f"--- {proxy} endpoints {REVIEWS_V3} (now)" in result.stdout
    assert untouched(bookinfo) == before


def test_config_every_proxy_already_has_changes_nothing(bookinfo: LocalMesh) -> None:
    result = bookinfo.mizzenctl("apply", "--dry-run", "-f", str(SAMPLES / "destination-rule-all.yaml"))
    assert result.stdout.splitlines()[-1] == \
        "no proxy's config would change (8 compared; dry run, nothing was stored)"


def test_a_delete_dry_run_shows_the_subsets_going_and_deletes_nothing(bookinfo: LocalMesh, tmp_path: Path) -> None:
    before = untouched(bookinfo)
    rule = tmp_path / "reviews-dr.yaml"
    # What is deleted is named by kind, namespace and name; the spec does not matter.
    rule.write_text(REVIEWS_WITHOUT_V3)
    result = bookinfo.mizzenctl("delete", "--dry-run", "-f", str(rule))
    lines = result.stdout.splitlines()
    assert lines[0] == "DestinationRule default/reviews deleted (dry run)"
    found = summaries(result.stdout)
    assert SIDECARS | {"istio-ingressgateway.istio-system"} <= found.keys()
    # Every subset cluster of reviews goes, with its endpoints, from every proxy that sees it.
    assert set(found.values()) == {"clusters 3 removed; endpoints 3 removed"}
    for proxy in found:
        for subset in ("v1", "v2", "v3"):
            assert f"+++ {proxy} clusters outbound|9080|{subset}|reviews.default.svc.cluster.local (after delete)" \
                in lines
    assert lines[-1] == f"{len(found)} of 8 proxies' config would change (dry run, nothing was stored)"
    assert untouched(bookinfo) == before
    assert bookinfo.mizzenctl("get", "destinationrules", "reviews").returncode == 0
