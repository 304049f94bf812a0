"""productpage: the HTML page, Istio's error texts, its retry, sign-in and header forwarding."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest

from samples.bookinfo import productpage
from samples.bookinfo._session import COOKIE_NAME, encode_session
from samples.bookinfo.productpage import Timeouts
from tests.unit.samples.conftest import Mesh, client_for

REVIEWS_ERROR = "Sorry, product reviews are currently unavailable for this book."
RATINGS_ERROR = "Ratings service is currently unavailable"
TRACE = {
    "x-request-id": "34eeb41d-d267-9e49-8b84-dde403fc5b72",
    "x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7",
    "x-b3-spanid": "e457b5a2e4d86bd1",
    "x-b3-parentspanid": "05e3ac9a4f6e3b90",
    "x-b3-sampled": "1",
    "x-b3-flags": "0",
    "b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1",
    "x-ot-span-context": "ot",
    "traceparent": "00-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-01",
    "tracestate": "vendor=1",
    "sw8": "40c7fdf104e3de67",
    "user-agent": "bookinfo-test/1",
}


def stars(page: str) -> list[tuple[str, int]]:
    """(colour, stars) of every rating on the page, and a check that the glyphs agree."""
    found = []
    for count, color, glyphs in re.findall(r'data-stars="(\d)" data-color="(\w+)"[^>]*>([★☆]+)<', page):
        assert glyphs == "★" * int(count) + "☆" * (5 - int(count))
        found.append((color, int(count)))
    return found


def reviews_version(page: str) -> str:
    match = re.search(r'<div id="reviews-version">([^<]*)</div>', page)
    assert match, page
    return match.group(1)


async def test_page_shows_details_and_black_stars_from_reviews_v2(mesh: Mesh) -> None:
    async with client_for(mesh.standard("v2")) as client:
        response = await client.get("/productpage")
    page = response.text
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>Simple Bookstore App</title>" in page
    assert '<h1 id="product-title">The Comedy of Errors</h1>' in page
    assert "<b>William Shakespeare's</b>" in page
    assert "<h2>Book Details</h2>" in page
    for value in ("William Shakespeare", "1595", "paperback", "200", "PublisherA", "English", "1234567890",
                  "123-1234567890"):
        assert f">{value}</td>" in page
    assert reviews_version(page) == "v2"
    assert "reviews-v2" in page
    assert "An extremely entertaining play by Shakespeare." in page
    assert "— Reviewer1" in page and "— Reviewer2" in page
    assert stars(page) == [("black", 5), ("black", 4)]
    assert "Error fetching" not in page
    # Self-contained: nothing for a browser to fetch but the Wikipedia link in Istio's description.
    assert "<script" not in page and "<link" not in page and "src=" not in page


async def test_page_shows_red_stars_from_v3_and_none_from_v1(mesh: Mesh) -> None:
    async with client_for(mesh.standard("v3")) as client:
        page = (await client.get("/productpage")).text
    assert (reviews_version(page), stars(page)) == ("v3", [("red", 5), ("red", 4)])

    mesh.add("reviews", mesh.reviews("v1"))
    async with client_for(mesh.productpage()) as client:
        page = (await client.get("/productpage")).text
    assert (reviews_version(page), stars(page)) == ("v1", [])
    assert "★" not in page and RATINGS_ERROR not in page
    assert "Absolutely fun and entertaining." in page


async def test_page_shows_ratings_error_when_ratings_is_down(mesh: Mesh) -> None:
    mesh.add("details", lambda request: httpx.Response(200, json={"id": 0}))
    mesh.add("reviews", mesh.reviews("v2"))  # ratings is not there: refused
    async with client_for(mesh.productpage()) as client:
        page = (await client.get("/productpage")).text
    assert page.count(RATINGS_ERROR) == 2
    assert stars(page) == []
    assert reviews_version(page) == "v2"


async def test_page_shows_istios_errors_when_details_and_reviews_are_down(mesh: Mesh) -> None:
    reviews_calls = mesh.add("reviews", lambda request: httpx.Response(503, text="upstream connect error"))
    async with client_for(mesh.productpage()) as client:
        response = await client.get("/productpage")
    page = response.text
    # Istio's page still renders, with an error where each part would be.
    assert response.status_code == 200
    assert "Error fetching product details!" in page
    assert "Sorry, product details are currently unavailable for this book." in page
    assert "Error fetching product reviews!" in page
    assert REVIEWS_ERROR in page
    assert "reviews-version" not in page
    # Istio's productpage tries reviews twice.
    assert len(reviews_calls.requests) == 2


async def test_reviews_is_retried_once_after_a_failure(mesh: Mesh) -> None:
    answers = iter([httpx.Response(503), httpx.Response(200, json={"version": "v3", "reviews": []})])
    calls = mesh.add("reviews", lambda request: next(answers))
    async with client_for(mesh.productpage()) as client:
        page = (await client.get("/productpage")).text
    assert len(calls.requests) == 2
    assert reviews_version(page) == "v3"
    assert REVIEWS_ERROR not in page


def test_timeouts_are_istios() -> None:
    # productpage.py in Istio: requests.get(..., timeout=3.0) everywhere, reviews in `for _ in range(2)`.
    assert Timeouts() == Timeouts(details_s=3.0, reviews_s=3.0, reviews_attempts=2, ratings_s=3.0)


async def test_slow_reviews_time_out_twice_then_the_page_gives_up(mesh: Mesh) -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(200, json={})

    mesh.add("details", hang)
    calls = mesh.add("reviews", hang)
    app = mesh.productpage(Timeouts(details_s=0.2, reviews_s=0.2, reviews_attempts=2))
    async with client_for(app) as client:
        started = time.monotonic()
        page = (await client.get("/productpage")).text
        elapsed = time.monotonic() - started
    # Two attempts of 0.2 s each: the page comes back after about 0.4 s (Istio: 2 x 3 s = 6 s).
    assert 0.35 < elapsed < 2.0
    assert len(calls.requests) == 2
    assert REVIEWS_ERROR in page and "Error fetching product details!" in page


async def test_tracing_headers_are_forwarded_to_details_and_reviews_and_on_to_ratings(mesh: Mesh) -> None:
    app = mesh.standard("v2")
    async with client_for(app) as client:
        headers = {**TRACE, "end-user": "alice", "x-unrelated": "no"}
        response = await client.get("/productpage", headers=headers)
    assert response.status_code == 200
    for name in ("details", "reviews", "ratings"):
        [request] = mesh.router.upstreams[f"{name}:9080"].requests
        for header, value in {**TRACE, "end-user": "alice"}.items():
            assert request.headers.get(header) == value, (name, header)
        assert "x-unrelated" not in request.headers


async def test_sign_in_sets_the_session_and_sends_end_user(mesh: Mesh) -> None:
    app = mesh.standard("v2")
    reviews_calls = mesh.router.upstreams["reviews:9080"]
    async with client_for(app) as client:
        login = await client.post("/login", content="username=jason&passwd=x",
                                  headers={"content-type": "application/x-www-form-urlencoded",
                                           "referer": "http://bookinfo.example/productpage?u=normal"})
        assert login.status_code == 302
        assert login.headers["location"] == "/productpage?u=normal"
        assert client.cookies.get(COOKIE_NAME)
        page = (await client.get("/productpage", headers={"end-user": "mallory"})).text
        assert "Signed in as <b>jason</b>" in page
        assert reviews_calls.requests[-1].headers["end-user"] == "jason"
        # The session cookie is forwarded too, as Istio's productpage does.
        assert f"{COOKIE_NAME}=" in reviews_calls.requests[-1].headers["cookie"]

        logout = await client.get("/logout", headers={"referer": "http://bookinfo.example/productpage"})
        assert (logout.status_code, logout.headers["location"]) == (302, "/productpage")
        assert 'session=""' in logout.headers["set-cookie"] or "session=;" in logout.headers["set-cookie"]
        client.cookies.clear()
        page = (await client.get("/productpage")).text
        assert "Signed in as" not in page and 'name="username"' in page
        assert "end-user" not in reviews_calls.requests[-1].headers


async def test_a_forged_session_is_ignored(mesh: Mesh) -> None:
    app = mesh.standard("v2")
    forged = encode_session("jason", "not-our-secret")
    async with client_for(app) as client:
        page = (await client.get("/productpage", headers={"cookie": f"{COOKIE_NAME}={forged}"})).text
    assert "Signed in as" not in page
    assert "end-user" not in mesh.router.upstreams["reviews:9080"].requests[-1].headers


async def test_login_without_referer_goes_to_the_product_page(mesh: Mesh) -> None:
    async with client_for(mesh.productpage()) as client:
        response = await client.post("/login", content="username=jason",
                                     headers={"content-type": "application/x-www-form-urlencoded"})
        assert response.headers["location"] == "/productpage"
        form = await client.get("/login")
        assert form.status_code == 200 and 'action="login"' in form.text


async def test_review_text_is_escaped(mesh: Mesh) -> None:
    body = {"version": "v2", "podname": "<b>pod</b>",
            "reviews": [{"reviewer": "<script>x</script>", "text": "a & b",
                         "rating": {"stars": 2, "color": "black\" onmouseover=\"x"}}]}
    mesh.add("reviews", lambda request: httpx.Response(200, json=body))
    async with client_for(mesh.productpage()) as client:
        page = (await client.get("/productpage")).text
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "a &amp; b" in page and "&lt;b&gt;pod&lt;/b&gt;" in page
    assert 'onmouseover="x' not in page


async def test_istio_reviews_without_version_field_are_read_from_the_podname(mesh: Mesh) -> None:
    body = {"id": "0", "podname": "reviews-v3-7d8f9c-x2x", "clustername": "null", "reviews": []}
    mesh.add("reviews", lambda request: httpx.Response(200, json=body))
    async with client_for(mesh.productpage()) as client:
        page = (await client.get("/productpage")).text
    assert reviews_version(page) == "v3"
    assert "on cluster" not in page


async def test_index_and_health(mesh: Mesh) -> None:
    async with client_for(mesh.productpage()) as client:
        health = await client.get("/health")
        assert (health.status_code, health.text) == (200, "Product page is healthy")
        for path in ("/", "/index.html"):
            index = await client.get(path)
            assert index.status_code == 200 and 'href="productpage?u=normal"' in index.text


async def test_api_routes_answer_like_istios(mesh: Mesh) -> None:
    async with client_for(mesh.standard("v3")) as client:
        products = await client.get("/api/v1/products")
        assert products.json() == productpage.PRODUCTS
        product = await client.get("/api/v1/products/0")
        assert (product.status_code, product.json()["ISBN-10"]) == (200, "1234567890")
        reviews = await client.get("/api/v1/products/0/reviews")
        assert reviews.json()["reviews"][0]["rating"] == {"stars": 5, "color": "red"}
        ratings = await client.get("/api/v1/products/0/ratings", headers=TRACE)
        assert ratings.json() == {"id": 0, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}
    assert mesh.router.upstreams["ratings:9080"].requests[-1].headers["x-b3-traceid"] == TRACE["x-b3-traceid"]


@pytest.mark.parametrize(("path", "error"), [
    ("/api/v1/products/0", "Sorry, product details are currently unavailable for this book."),
    ("/api/v1/products/0/reviews", REVIEWS_ERROR),
    ("/api/v1/products/0/ratings", "Sorry, product ratings are currently unavailable for this book."),
])
async def test_api_errors_carry_the_upstream_status(mesh: Mesh, path: str, error: str) -> None:
    for name in ("details", "reviews", "ratings"):
        mesh.add(name, lambda request: httpx.Response(503))
    async with client_for(mesh.productpage()) as client:
        response = await client.get(path)
    assert (response.status_code, response.json()) == (503, {"error": error})
    mesh.router.upstreams.clear()  # now refused: no status at all
    async with client_for(mesh.productpage()) as client:
        assert (await client.get(path)).status_code == 500
