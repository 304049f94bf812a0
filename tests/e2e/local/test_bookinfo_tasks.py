"""Istio's Bookinfo tasks on the local mesh, with Istio's own config files applied unchanged,
driven through the ingress gateway like a reader's browser."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.local.conftest import SAMPLES
from tests.harness.local_mesh import LocalMesh, reviews_version

pytestmark = pytest.mark.e2e


@pytest.fixture
def tasks() -> Path:
    """Istio's task files as the repository ships them (samples/, copied unchanged)."""
    return SAMPLES


def versions(mesh: LocalMesh, count: int, **headers: str) -> Counter[str | None]:
    return Counter(reviews_version(mesh.productpage(**headers)[1]) for _ in range(count))


def test_productpage_through_the_ingress_gateway(local_mesh: LocalMesh) -> None:
    status, html = local_mesh.productpage()
    assert status == 200
    assert "The Comedy of Errors" in html
    assert reviews_version(html) in ("v1", "v2", "v3")


def test_request_routing(bookinfo: LocalMesh, tasks: Path) -> None:
    bookinfo.apply(tasks / "virtual-service-all-v1.yaml")
    assert versions(bookinfo, 10) == Counter({"v1": 10})
    bookinfo.apply(tasks / "virtual-service-reviews-test-v2.yaml")
    assert versions(bookinfo, 5, **{"end-user": "jason"}) == Counter({"v2": 5})
    assert versions(bookinfo, 5) == Counter({"v1": 5})


def test_fault_injection_delay_shows_the_reviews_error(bookinfo: LocalMesh, tasks: Path) -> None:
    bookinfo.apply(tasks / "virtual-service-all-v1.yaml", tasks / "virtual-service-reviews-test-v2.yaml",
                   tasks / "virtual-service-ratings-test-delay.yaml")
    started = time.monotonic()
    status, html = bookinfo.productpage(**{"end-user": "jason"})
    elapsed = time.monotonic() - started
    assert status == 200
    assert "Sorry, product reviews are currently unavailable for this book." in html
    # productpage's 3 s timeout, tried twice, gives up before the 7 s delay ends.
    assert 5.5 < elapsed < 7.0
    status, html = bookinfo.productpage()
    assert reviews_version(html) == "v1"


def test_fault_injection_abort_shows_the_ratings_error(bookinfo: LocalMesh, tasks: Path) -> None:
    bookinfo.apply(tasks / "virtual-service-all-v1.yaml", tasks / "virtual-service-reviews-test-v2.yaml",
                   tasks / "virtual-service-ratings-test-abort.yaml")
    status, html = bookinfo.productpage(**{"end-user": "jason"})
    assert status == 200
    assert "Ratings service is currently unavailable" in html
    assert "Ratings service is currently unavailable" not in bookinfo.productpage()[1]


def test_traffic_shifting(bookinfo: LocalMesh, tasks: Path) -> None:
    bookinfo.apply(tasks / "virtual-service-all-v1.yaml", tasks / "virtual-service-reviews-50-v3.yaml")
    counts = versions(bookinfo, 200)
    assert set(counts) == {"v1", "v3"}
    # 200 draws at p=0.5: sd ~7; +-30 is over 4 sigma.
    assert abs(counts["v3"] - 100) < 30, counts
    bookinfo.apply(tasks / "virtual-service-reviews-v3.yaml")
    assert versions(bookinfo, 20) == Counter({"v3": 20})
