"""Istio's "Authorization for HTTP traffic" task on the local mesh's Bookinfo, with the
task's AuthorizationPolicies unchanged (samples/bookinfo/security), judged by the page a
reader's browser gets through the ingress gateway."""

from __future__ import annotations

import pytest

from samples.bookinfo.productpage import DETAILS_ERROR, REVIEWS_ERROR
from samples.bookinfo.reviews import RATINGS_UNAVAILABLE
from tests.e2e.local.conftest import SAMPLES, SECURITY_SAMPLES
from tests.harness.local_mesh import LocalMesh

pytestmark = pytest.mark.e2e


def test_authorization_for_http_traffic(bookinfo: LocalMesh) -> None:
    # reviews v3 calls ratings, so the page shows whether reviews may.
    bookinfo.apply(SAMPLES / "virtual-service-reviews-v3.yaml")
    assert bookinfo.productpage()[0] == 200
    bookinfo.apply(SECURITY_SAMPLES / "allow-nothing.yaml")
    assert bookinfo.productpage() == (403, "RBAC: access denied")
    # productpage may be read, but it may not read anything behind it yet.
    bookinfo.apply(SECURITY_SAMPLES / "productpage-viewer.yaml")
    status, html = bookinfo.productpage()
    assert status == 200
    assert DETAILS_ERROR in html and REVIEWS_ERROR in html
    bookinfo.apply(SECURITY_SAMPLES / "details-viewer.yaml", SECURITY_SAMPLES / "reviews-viewer.yaml")
    status, html = bookinfo.productpage()
    assert DETAILS_ERROR not in html and REVIEWS_ERROR not in html
    assert RATINGS_UNAVAILABLE in html
    bookinfo.apply(SECURITY_SAMPLES / "ratings-viewer.yaml")
    status, html = bookinfo.productpage()
    assert status == 200 and RATINGS_UNAVAILABLE not in html
    # Deleting allow-nothing and the viewers restores the open mesh.
    bookinfo.delete(*(SECURITY_SAMPLES / f"{name}.yaml" for name in (
        "allow-nothing", "productpage-viewer", "details-viewer", "reviews-viewer", "ratings-viewer")))
    assert bookinfo.productpage()[0] == 200
