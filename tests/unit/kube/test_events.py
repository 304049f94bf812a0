"""The pure steps of list-then-watch: decoding watch lines and diffing a relist."""

from __future__ import annotations

from typing import Any

import pytest

from libs.kube import KubeApiError, KubeError, ResourceExpired, WatchEvent
from libs.kube._events import Bookmark, decode_event, object_key, relist_diff


def obj(name: str, rv: str, namespace: str = "default") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "resourceVersion": rv}}


def test_object_events_carry_their_object() -> None:
    event = decode_event({"type": "MODIFIED", "object": obj("a", "7")}, "watch x")
    assert event == WatchEvent("MODIFIED", obj("a", "7"))
    assert isinstance(event, WatchEvent)
    assert (event.key, event.resource_version) == (("default", "a"), "7")


def test_a_bookmark_only_advances_the_resource_version() -> None:
    line = {"type": "BOOKMARK", "object": {"kind": "VirtualService", "metadata": {"resourceVersion": "42"}}}
    assert decode_event(line, "watch x") == Bookmark("42")


def test_error_410_is_resource_expired() -> None:
    status = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old resource version: 3 (9)"}
    with pytest.raises(ResourceExpired) as raised:
        decode_event({"type": "ERROR", "object": status}, "watch x")
    assert (raised.value.status, raised.value.reason) == (410, "Expired")
    assert "too old resource version" in str(raised.value)


def test_other_errors_keep_their_status() -> None:
    status = {"kind": "Status", "code": 500, "reason": "InternalError", "message": "etcd is sad"}
    with pytest.raises(KubeApiError) as raised:
        decode_event({"type": "ERROR", "object": status}, "watch x")
    assert not isinstance(raised.value, ResourceExpired)
    assert raised.value.status == 500


@pytest.mark.parametrize("line", [{"type": "SURPRISE", "object": {}}, {"type": "ADDED"}])
def test_malformed_events_are_errors(line: dict[str, Any]) -> None:
    with pytest.raises(KubeError):
        decode_event(line, "watch x")


def test_relist_diff_reports_adds_changes_and_deletes() -> None:
    known = {object_key(o): o for o in (obj("same", "1"), obj("changed", "2"), obj("gone", "3"))}
    listed = [obj("same", "1"), obj("changed", "8"), obj("new", "9")]
    events = relist_diff(known, listed)
    assert [(e.type, e.name, e.resource_version) for e in events] == [
        ("MODIFIED", "changed", "8"), ("ADDED", "new", "9"), ("DELETED", "gone", "3")]


def test_relist_diff_of_identical_states_is_empty() -> None:
    objects = [obj("a", "1"), obj("b", "2", namespace="other")]
    assert relist_diff({object_key(o): o for o in objects}, objects) == []


def test_same_name_in_two_namespaces_is_two_objects() -> None:
    events = relist_diff({}, [obj("a", "1"), obj("a", "2", namespace="other")])
    assert [e.key for e in events] == [("default", "a"), ("other", "a")]
