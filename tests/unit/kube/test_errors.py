"""Wrapping the client's ApiException: fields, not messages to parse."""

from __future__ import annotations

import json

from kubernetes.client.exceptions import ApiException

from libs.kube import AlreadyExists, KubeApiError, KubeUnavailable, ResourceExpired
from libs.kube._errors import from_api_exception


def api_exception(status: int, body: object) -> ApiException:
    exc = ApiException(status=status, reason="Reason")
    exc.body = body if isinstance(body, str) else json.dumps(body)
    return exc


def test_a_status_body_gives_reason_and_message() -> None:
    error = from_api_exception("get x", api_exception(404, {"kind": "Status", "code": 404, "reason": "NotFound",
                                                             "message": 'virtualservices "x" not found'}))
    assert isinstance(error, KubeApiError)
    assert (error.status, error.reason, error.message) == (404, "NotFound", 'virtualservices "x" not found')
    assert str(error) == 'get x: 404 NotFound: virtualservices "x" not found'


def test_410_is_resource_expired() -> None:
    assert isinstance(from_api_exception("list x", api_exception(410, {"code": 410, "reason": "Expired"})),
                      ResourceExpired)


def test_an_unreadable_body_falls_back_to_the_http_status() -> None:
    error = from_api_exception("list x", api_exception(502, "<html>bad gateway</html>"))
    assert isinstance(error, KubeApiError)
    assert (error.status, error.reason) == (502, "Reason")


def test_no_http_answer_is_unavailable() -> None:
    error = from_api_exception("list x", ApiException(status=0, reason="SSLError\ncertificate verify failed"))
    assert isinstance(error, KubeUnavailable)
    assert "certificate verify failed" in str(error)


def test_409_already_exists_is_its_own_class_but_a_stale_replace_is_not() -> None:
    created = from_api_exception("create x", api_exception(409, {"code": 409, "reason": "AlreadyExists"}))
    assert isinstance(created, AlreadyExists)
    stale = from_api_exception("replace x", api_exception(409, {"code": 409, "reason": "Conflict"}))
    assert isinstance(stale, KubeApiError) and not isinstance(stale, AlreadyExists)
