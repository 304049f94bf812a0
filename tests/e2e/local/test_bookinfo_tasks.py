"""Istio's Bookinfo tasks on the local mesh, with Istio's own config files applied unchanged,
driven through the ingress gateway like a reader's browser (the checks are
`tests/e2e/bookinfo_tasks.py`, which the compose and kind suites run too)."""

from __future__ import annotations

import pytest

from tests.e2e import bookinfo_tasks
from tests.harness.local_mesh import LocalMesh

pytestmark = pytest.mark.e2e


def test_productpage_through_the_ingress_gateway(local_mesh: LocalMesh) -> None:
    bookinfo_tasks.check_productpage(local_mesh)


def test_request_routing(bookinfo: LocalMesh) -> None:
    bookinfo_tasks.check_request_routing(bookinfo)


def test_fault_injection_delay_shows_the_reviews_error(bookinfo: LocalMesh) -> None:
    bookinfo_tasks.check_fault_delay(bookinfo)


def test_fault_injection_abort_shows_the_ratings_error(bookinfo: LocalMesh) -> None:
    bookinfo_tasks.check_fault_abort(bookinfo)


def test_traffic_shifting(bookinfo: LocalMesh) -> None:
    bookinfo_tasks.check_traffic_shifting(bookinfo)
