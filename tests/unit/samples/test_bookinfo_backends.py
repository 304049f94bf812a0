"""details, ratings and reviews: Istio's JSON shapes, and how reviews uses ratings."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from samples.bookinfo import details, ratings, reviews
from samples.bookinfo._config import Settings
from tests.unit.samples.conftest import Mesh, client_for

REVIEWER1_TEXT = "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"
REVIEWER2_TEXT = ("Absolutely fun and entertaining. "
                  "The play lacks thematic depth when compared to other plays by Shakespeare.")


async def test_details_answers_istios_book() -> None:
    async with client_for(details.create_app(Settings(service="details"))) as client:
        response = await client.get("/details/0")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {
            "id": 0, "author": "William Shakespeare", "year": 1595, "type": "paperback", "pages": 200,
            "publisher": "PublisherA", "language": "English",
            "ISBN-10": "1234567890", "ISBN-13": "123-1234567890",
        }
        assert (await client.get("/details/7")).json()["id"] == 7
        health = await client.get("/health")
        assert (health.status_code, health.json()) == (200, {"status": "Details is healthy"})


@pytest.mark.parametrize("path", ["/details/abc", "/details"])
async def test_details_rejects_a_non_numeric_id(path: str) -> None:
    async with client_for(details.create_app(Settings(service="details"))) as client:
        response = await client.get(path)
    assert response.status_code == 400
    assert response.json() == {"error": "please provide numeric product id"}


async def test_ratings_answers_and_accepts_new_ratings() -> None:
    async with client_for(ratings.create_app(Settings(service="ratings"))) as client:
        default = {"id": 0, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}
        assert (await client.get("/ratings/0")).json() == default
        posted = await client.post("/ratings/3", content=json.dumps({"Reviewer1": 1, "Reviewer2": 2}))
        assert posted.json() == {"id": 3, "ratings": {"Reviewer1": 1, "Reviewer2": 2}}
        assert (await client.get("/ratings/3")).json()["ratings"] == {"Reviewer1": 1, "Reviewer2": 2}
        assert (await client.get("/ratings/0")).json()["ratings"] == {"Reviewer1": 5, "Reviewer2": 4}
        bad_id = await client.get("/ratings/x")
        assert (bad_id.status_code, bad_id.json()) == (400, {"error": "please provide numeric product ID"})
        bad_body = await client.post("/ratings/3", content=b"{not json")
        assert bad_body.status_code == 400
        assert bad_body.json() == {"error": "please provide valid ratings JSON"}
        assert (await client.get("/health")).json() == {"status": "Ratings is healthy"}


async def test_reviews_v1_has_no_ratings_and_does_not_call_ratings(mesh: Mesh) -> None:
    seen = mesh.add("ratings", ratings.create_app(Settings(service="ratings")))
    async with client_for(mesh.reviews("v1")) as client:
        response = await client.get("/reviews/0")
    assert response.json() == {
        "id": "0", "podname": "reviews-v1", "clustername": "null", "version": "v1",
        "reviews": [
            {"reviewer": "Reviewer1", "text": REVIEWER1_TEXT},
            {"reviewer": "Reviewer2", "text": REVIEWER2_TEXT},
        ],
    }
    assert seen.requests == []


@pytest.mark.parametrize(("version", "color"), [("v2", "black"), ("v3", "red")])
async def test_reviews_v2_v3_show_ratings_in_their_colour(mesh: Mesh, version: str, color: str) -> None:
    seen = mesh.add("ratings", ratings.create_app(Settings(service="ratings")))
    async with client_for(mesh.reviews(version)) as client:
        body = (await client.get("/reviews/0", headers={"x-request-id": "r-1", "end-user": "jason"})).json()
    assert body["version"] == version
    assert body["podname"] == f"reviews-{version}"
    assert [r["rating"] for r in body["reviews"]] == [
        {"stars": 5, "color": color}, {"stars": 4, "color": color},
    ]
    [request] = seen.requests
    assert str(request.url) == "http://ratings:9080/ratings/0"
    assert request.headers["x-request-id"] == "r-1"
    assert request.headers["end-user"] == "jason"


def _unavailable(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503, text="no healthy upstream")


def _partial(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"id": 0, "ratings": {"Reviewer2": 3}})


async def test_reviews_shows_istios_error_when_ratings_fails(mesh: Mesh) -> None:
    mesh.add("ratings", _unavailable)
    async with client_for(mesh.reviews("v2")) as client:
        body = (await client.get("/reviews/0")).json()
    unavailable = {"error": "Ratings service is currently unavailable"}
    assert [r["rating"] for r in body["reviews"]] == [unavailable, unavailable]


async def test_reviews_shows_the_error_only_for_reviewers_ratings_left_out(mesh: Mesh) -> None:
    mesh.add("ratings", _partial)
    async with client_for(mesh.reviews("v3")) as client:
        body = (await client.get("/reviews/0")).json()
    assert [r["rating"] for r in body["reviews"]] == [
        {"error": "Ratings service is currently unavailable"}, {"stars": 3, "color": "red"},
    ]


async def test_reviews_with_ratings_down_still_answers(mesh: Mesh) -> None:
    # Nothing registered for ratings: the connection is refused.
    async with client_for(mesh.reviews("v2")) as client:
        response = await client.get("/reviews/0")
    assert response.status_code == 200
    assert response.json()["reviews"][0]["rating"] == {"error": "Ratings service is currently unavailable"}


def test_ratings_timeouts_are_istios() -> None:
    # Istio's reviews: 10 s for black stars (v2), 2.5 s otherwise (v3).
    assert reviews.ratings_timeout("black") == 10.0
    assert reviews.ratings_timeout("red") == 2.5


async def test_reviews_gives_up_on_slow_ratings(mesh: Mesh, monkeypatch: pytest.MonkeyPatch) -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(200, json={})

    asked: list[str] = []

    def short(color: str) -> float:
        asked.append(color)
        return 0.1

    monkeypatch.setattr(reviews, "ratings_timeout", short)
    mesh.add("ratings", slow)
    async with client_for(mesh.reviews("v3")) as client:
        started = time.monotonic()
        body = (await client.get("/reviews/0")).json()
    assert time.monotonic() - started < 2
    assert asked == ["red"]
    assert body["reviews"][1]["rating"] == {"error": "Ratings service is currently unavailable"}


async def test_reviews_health_and_bad_ids(mesh: Mesh) -> None:
    async with client_for(mesh.reviews("v1")) as client:
        assert (await client.get("/health")).json() == {"status": "Reviews is healthy"}
        assert (await client.get("/reviews/abc")).status_code == 404


def test_reviews_rejects_unknown_versions() -> None:
    with pytest.raises(ValueError, match="v9"):
        reviews.create_app(Settings(service="reviews", version="v9"))


def test_reviews_names_its_instance() -> None:
    settings = Settings(service="reviews", version="v2", podname="reviews-v2-abc", clustername="east")
    body = reviews.build_reviews(0, settings, {"Reviewer1": 1, "Reviewer2": 2})
    assert (body["podname"], body["clustername"]) == ("reviews-v2-abc", "east")
