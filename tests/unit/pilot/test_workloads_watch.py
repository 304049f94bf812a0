"""The workload registry's version and contents, as pushes read them: a digest of what is
registered, whatever order it came in, kept up to date one registration at a time."""

from __future__ import annotations

from libs.config.workloads import WorkloadRegistration
from services.pilot.workloads_watch import WorkloadWatcher


def registration(name: str, address: str, **labels: str) -> WorkloadRegistration:
    return WorkloadRegistration(name=name, namespace="default", address=address, labels=labels or {"app": name})


REVIEWS = registration("reviews-1", "10.0.0.1")
RATINGS = registration("ratings-1", "10.0.0.2")
DETAILS = registration("details-1", "10.0.0.3")


def watcher(*registrations: WorkloadRegistration) -> WorkloadWatcher:
    watching = WorkloadWatcher(None, on_synced=lambda: None, on_change=lambda: None)  # type: ignore[arg-type]
    for one in registrations:
        watching._apply(one.key, one.to_json(), 1)
    return watching


def test_the_version_is_the_content_not_the_order_it_arrived_in() -> None:
    assert watcher(REVIEWS, RATINGS, DETAILS).version() == watcher(DETAILS, REVIEWS, RATINGS).version()
    assert watcher(REVIEWS, RATINGS).version() != watcher(REVIEWS, DETAILS).version()
    assert watcher().version() == ""


def test_a_refresh_changes_nothing_and_keeps_the_contents_object() -> None:
    watching = watcher(REVIEWS, RATINGS)
    contents, version = watching.contents(), watching.version()
    assert watching._apply(REVIEWS.key, REVIEWS.to_json(), 2) is False
    assert watching.contents() is contents
    assert watching.version() == version
    assert [w.name for w in contents.workloads] == ["ratings-1", "reviews-1"]
    assert contents.version == version


def test_each_change_moves_the_version_and_undoing_it_moves_it_back() -> None:
    watching = watcher(REVIEWS, RATINGS)
    before, contents = watching.version(), watching.contents()
    moved = registration("reviews-1", "10.0.0.9")
    assert watching._apply(moved.key, moved.to_json(), 2) is True
    assert watching.version() != before
    assert watching.contents() is not contents
    assert [w.address for w in watching.contents().workloads] == ["10.0.0.2", "10.0.0.9"]
    assert watching._apply(REVIEWS.key, REVIEWS.to_json(), 3) is True
    assert watching.version() == before
    assert watching._apply(DETAILS.key, DETAILS.to_json(), 4) is True
    assert watching._apply(DETAILS.key, None, 5) is True
    assert watching.version() == before
    assert watching._apply(DETAILS.key, None, 6) is False
    for one in (REVIEWS, RATINGS):
        watching._apply(one.key, None, 7)
    assert watching.version() == "" and watching.contents().workloads == ()


def test_the_same_registration_written_differently_is_still_a_refresh() -> None:
    watching = watcher(REVIEWS)
    version = watching.version()
    reordered = b'{"sidecar": true, "namespace": "default", "name": "reviews-1", "address": "10.0.0.1", ' \
                b'"labels": {"app": "reviews-1"}, "serviceAccount": "default", "ports": {}, "locality": ""}'
    assert reordered != REVIEWS.to_json()
    assert watching._apply(REVIEWS.key, reordered, 2) is False
    assert watching.version() == version


def test_an_unreadable_registration_keeps_the_last_good_one() -> None:
    watching = watcher(REVIEWS)
    version = watching.version()
    assert watching._apply(REVIEWS.key, b"{not json", 2) is False
    assert watching.version() == version
    assert [w.address for w in watching.contents().workloads] == ["10.0.0.1"]
