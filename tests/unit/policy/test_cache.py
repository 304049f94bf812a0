"""The check cache, pure: a decision serves every request that agrees with it on what it
read, for its valid duration and use count, and no other request.  The clock is injected."""

from __future__ import annotations

from typing import Any

import pytest

from services.policy.cache import CheckCache, Signature


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


APP = frozenset({("destination.labels", "app")})
VERSION = frozenset({("source.labels", "version")})


def request(app: str = "reviews", version: str = "v1", **more: Any) -> dict[str, Any]:
    return {"destination.labels": {"app": app, "version": "v9"}, "source.labels": {"app": "productpage",
                                                                                  "version": version},
            "source.ip": "10.0.0.1", **more}


def cache_with(read: Signature, value: str, *, attributes: dict[str, Any] | None = None, valid_s: float = 10.0,
               uses: int = 100, clock: Clock | None = None) -> CheckCache[str]:
    cache: CheckCache[str] = CheckCache(clock=clock or Clock())
    cache.put(attributes or request(), read, value, valid_s=valid_s, uses=uses)
    return cache


def test_a_request_agreeing_on_what_was_read_hits_whatever_else_differs() -> None:
    cache = cache_with(APP, "denied")
    assert cache.get(request(version="v3", **{"source.ip": "10.9.9.9", "request.path": "/x"})) == "denied"


def test_a_request_differing_in_a_read_key_misses() -> None:
    cache = cache_with(APP, "denied")
    assert cache.get(request(app="ratings")) is None


def test_only_the_key_read_of_a_map_counts() -> None:
    cache = cache_with(APP, "denied")
    other_keys = request()
    other_keys["destination.labels"] = {"app": "reviews", "team": "x"}
    assert cache.get(other_keys) == "denied"


def test_a_whole_map_read_needs_the_whole_map_equal() -> None:
    cache = cache_with(frozenset({("destination.labels", None)}), "denied")
    assert cache.get(request()) == "denied"
    other_keys = request()
    other_keys["destination.labels"] = {"app": "reviews", "version": "v9", "team": "x"}
    assert cache.get(other_keys) is None


def test_an_absent_attribute_is_part_of_the_key() -> None:
    read = frozenset({("source.principal", None)})
    cache = cache_with(read, "denied")
    assert cache.get(request()) == "denied"
    assert cache.get(request(**{"source.principal": "spiffe://cluster.local/ns/default/sa/x"})) is None


def test_a_decision_expires_after_its_valid_duration() -> None:
    clock = Clock(1000.0)
    cache = cache_with(APP, "denied", valid_s=5.0, clock=clock)
    clock.now = 1004.9
    assert cache.get(request()) == "denied"
    clock.now = 1005.0
    assert cache.get(request()) is None


def test_a_decision_serves_at_most_its_use_count() -> None:
    cache = cache_with(APP, "denied", uses=2)
    assert [cache.get(request()) for _ in range(3)] == ["denied", "denied", None]


@pytest.mark.parametrize(("valid_s", "uses"), [(0.0, 10), (10.0, 0)])
def test_a_decision_valid_for_nothing_is_not_kept(valid_s: float, uses: int) -> None:
    cache = cache_with(APP, "denied", valid_s=valid_s, uses=uses)
    assert cache.get(request()) is None


def test_decisions_reading_different_attributes_keep_separate_signatures() -> None:
    cache = cache_with(APP, "by-app")
    cache.put(request(version="v3"), VERSION, "by-version", valid_s=10.0, uses=100)
    # Agrees with both: the newest signature answers.
    assert cache.get(request(version="v3")) == "by-version"
    assert cache.get(request(version="v1")) == "by-app"
    assert cache.get(request(app="ratings", version="v3")) == "by-version"
    assert cache.get(request(app="ratings", version="v1")) is None


def test_entries_past_max_entries_are_evicted_oldest_first() -> None:
    cache: CheckCache[str] = CheckCache(max_entries=2, clock=Clock())
    for app in ("a", "b", "c"):
        cache.put(request(app=app), APP, app, valid_s=10.0, uses=100)
    assert [cache.get(request(app=app)) for app in ("a", "b", "c")] == [None, "b", "c"]


def test_eviction_takes_the_oldest_signatures_entries_first() -> None:
    cache: CheckCache[str] = CheckCache(max_entries=2, clock=Clock())
    cache.put(request(app="a"), APP, "app-a", valid_s=10.0, uses=100)
    cache.put(request(version="v7"), VERSION, "version-v7", valid_s=10.0, uses=100)
    cache.put(request(version="v8"), VERSION, "version-v8", valid_s=10.0, uses=100)
    assert cache.get(request(app="a", version="v0")) is None
    assert cache.get(request(app="z", version="v7")) == "version-v7"
    assert cache.get(request(app="z", version="v8")) == "version-v8"


def test_hit_rate_counts_hits_among_lookups() -> None:
    cache: CheckCache[str] = CheckCache(clock=Clock())
    assert cache.hit_rate == 0.0
    cache.put(request(), APP, "denied", valid_s=10.0, uses=100)
    cache.get(request())
    cache.get(request(app="ratings"))
    cache.get(request())
    cache.get(request(app="details"))
    assert (cache.hits, cache.misses, cache.hit_rate) == (2, 2, 0.5)


def test_clear_forgets_every_decision() -> None:
    cache = cache_with(APP, "denied")
    cache.clear()
    assert cache.get(request()) is None


def test_a_key_missing_from_a_map_is_not_the_map_being_absent() -> None:
    # `source.labels["version"] != "v1"` is true for a known caller without a version label
    # (""), and fails (the rule does not apply) for a caller the directory does not know.
    known_caller = request()
    known_caller["source.labels"] = {"app": "productpage"}
    cache = cache_with(VERSION, "denied", attributes=known_caller)
    unknown_caller = request()
    del unknown_caller["source.labels"]
    assert cache.get(unknown_caller) is None
