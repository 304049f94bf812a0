"""What the informer remembers between events: duplicates dropped, event types normalised."""

from __future__ import annotations

from typing import Any, cast

from libs.kube import KubeClient, ResourceRef, WatchEvent, WatchSettings
from libs.kube._informer import _Informer


def obj(name: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", "resourceVersion": rv}}


def informer() -> _Informer:
    # _apply does no I/O; the client is never touched.
    return _Informer(cast(KubeClient, None), ResourceRef("g", "v1", "things"), None, None, WatchSettings())


def test_a_replayed_event_is_dropped() -> None:
    state = informer()
    assert state._apply(WatchEvent("ADDED", obj("a", "5"))) == WatchEvent("ADDED", obj("a", "5"))
    assert state._apply(WatchEvent("ADDED", obj("a", "5"))) is None
    assert state._apply(WatchEvent("MODIFIED", obj("a", "5"))) is None
    assert state.resource_version == "5"


def test_types_follow_what_the_consumer_was_told() -> None:
    state = informer()
    # A key it never yielded is an ADDED, whatever the server called it, and a known one a MODIFIED.
    assert state._apply(WatchEvent("MODIFIED", obj("a", "3"))).type == "ADDED"  # type: ignore[union-attr]
    assert state._apply(WatchEvent("ADDED", obj("a", "4"))).type == "MODIFIED"  # type: ignore[union-attr]


def test_deleting_what_it_never_saw_is_not_an_event() -> None:
    state = informer()
    assert state._apply(WatchEvent("DELETED", obj("ghost", "9"))) is None
    assert state.resource_version == "9"  # but the stream did move on
    state._apply(WatchEvent("ADDED", obj("a", "10")))
    assert state._apply(WatchEvent("DELETED", obj("a", "11"))) == WatchEvent("DELETED", obj("a", "11"))
    assert state.known == {}
