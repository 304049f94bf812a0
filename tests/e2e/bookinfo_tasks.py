"""Istio's Bookinfo tasks as checks any running mesh can be put through: request routing,
fault injection (delay and abort) and traffic shifting, with Istio's own task files, through
the mesh's ingress gateway like a reader's browser.

A mesh is anything with an `ingress_url` and an `apply(*files)` that returns once the config
is in effect on every proxy (`BookinfoMesh`): the kind suite's cluster (tests/e2e/kind)
implements it with kubectl and pilot's sync status; a suite whose mesh cannot run here
proves its plumbing on one that can, since the checks themselves are shared.  Each check
starts from Bookinfo with `destination-rule-all.yaml` applied and no task VirtualService.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path
from typing import Protocol

import httpx

from tests.harness.http import HTTP

TASKS = Path(__file__).resolve().parents[2] / "samples" / "bookinfo" / "networking"
JASON = {"end-user": "jason"}


class BookinfoMesh(Protocol):
    @property
    def ingress_url(self) -> str:
        """Where the ingress gateway serves Bookinfo's gateway (http://host:port)."""

    def apply(self, *files: Path) -> None:
        """Apply Istio config files in Bookinfo's namespace; return once every proxy has it."""


def productpage(mesh: BookinfoMesh, client: httpx.Client | None = None, **headers: str) -> tuple[int, str]:
    url = f"{mesh.ingress_url}/productpage"
    response = client.get(url, headers=headers) if client else HTTP.get(url, headers=headers, timeout=30)
    return response.status_code, response.text


def reviews_version(html: str) -> str | None:
    found = re.search(r'id="reviews-version">(v\d)<', html)
    return found.group(1) if found else None


def versions(mesh: BookinfoMesh, count: int, **headers: str) -> Counter[str | None]:
    # One client: each new one builds an SSL context (34 - 60 ms of CPU).  Envoy routes each
    # request on a kept-alive connection on its own, weights included.
    with httpx.Client(timeout=30) as client:
        return Counter(reviews_version(productpage(mesh, client, **headers)[1]) for _ in range(count))


def check_productpage(mesh: BookinfoMesh) -> None:
    status, html = productpage(mesh)
    assert status == 200, html[:500]
    assert "The Comedy of Errors" in html
    assert reviews_version(html) in ("v1", "v2", "v3")


def check_request_routing(mesh: BookinfoMesh) -> None:
    mesh.apply(TASKS / "virtual-service-all-v1.yaml")
    assert versions(mesh, 10) == Counter({"v1": 10})
    mesh.apply(TASKS / "virtual-service-reviews-test-v2.yaml")
    assert versions(mesh, 5, **JASON) == Counter({"v2": 5})
    assert versions(mesh, 5) == Counter({"v1": 5})


def check_fault_delay(mesh: BookinfoMesh) -> None:
    mesh.apply(TASKS / "virtual-service-all-v1.yaml", TASKS / "virtual-service-reviews-test-v2.yaml",
               TASKS / "virtual-service-ratings-test-delay.yaml")
    started = time.monotonic()
    status, html = productpage(mesh, **JASON)
    elapsed = time.monotonic() - started
    assert status == 200
    assert "Sorry, product reviews are currently unavailable for this book." in html
    # productpage's 3 s timeout, tried twice, gives up before the 7 s delay ends.
    assert 5.5 < elapsed < 7.0, elapsed
    assert reviews_version(productpage(mesh)[1]) == "v1"


def check_fault_abort(mesh: BookinfoMesh) -> None:
    mesh.apply(TASKS / "virtual-service-all-v1.yaml", TASKS / "virtual-service-reviews-test-v2.yaml",
               TASKS / "virtual-service-ratings-test-abort.yaml")
    status, html = productpage(mesh, **JASON)
    assert status == 200
    assert "Ratings service is currently unavailable" in html
    assert "Ratings service is currently unavailable" not in productpage(mesh)[1]


def check_traffic_shifting(mesh: BookinfoMesh) -> None:
    mesh.apply(TASKS / "virtual-service-all-v1.yaml", TASKS / "virtual-service-reviews-50-v3.yaml")
    counts = versions(mesh, 100)
    assert set(counts) == {"v1", "v3"}, counts
    # 100 draws at p=0.5: sd 5; +-20 is 4 sigma, and still far from an 80/20 split.
    assert abs(counts["v3"] - 50) < 20, counts
    mesh.apply(TASKS / "virtual-service-reviews-v3.yaml")
    assert versions(mesh, 20) == Counter({"v3": 20})


CHECKS = (check_request_routing, check_fault_delay, check_fault_abort, check_traffic_shifting)
