"""Service-account usernames as TokenReview reports them."""

from __future__ import annotations

import pytest

from libs.kube import ServiceAccount, parse_service_account


def test_a_service_account_username() -> None:
    assert parse_service_account("system:serviceaccount:bookinfo:reviews") == ServiceAccount("bookinfo", "reviews")


@pytest.mark.parametrize("username", ["alice", "system:serviceaccount:", "system:serviceaccount:ns",
                                      "system:serviceaccount::sa", "system:serviceaccount:ns:", "system:node:n1",
                                      "system:serviceaccount:ns:sa:extra"])
def test_anything_else_is_not_one(username: str) -> None:
    assert parse_service_account(username) is None
