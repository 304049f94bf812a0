"""productpage: the page a reader sees; calls details and reviews, like Istio's Flask productpage.

Timeouts and retries are Istio's on purpose, because Istio's tasks are written against them:
every call has a 3 s timeout, and reviews is tried twice.  Istio keeps that retry as a deliberate
"bug" for the fault-injection task: with a 7 s delay on ratings for jason, reviews v2 waits
(its own ratings timeout is 10 s), productpage gives up after 3 s, retries, gives up again, and
the page shows "Sorry, product reviews are currently unavailable" after about 6 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse

from samples.bookinfo._client import Fetched, get_json, outbound_client
from samples.bookinfo._config import Settings
from samples.bookinfo._headers import forward_headers
from samples.bookinfo._page import render_index, render_login, render_productpage
from samples.bookinfo._server import add_request_log
from samples.bookinfo._session import COOKIE_NAME, decode_session, encode_session

PRODUCTS: list[dict[str, Any]] = [
    {
        "id": 0,
        "title": "The Comedy of Errors",
        "descriptionHtml": (
            '<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">Wikipedia Summary</a>: '
            "The Comedy of Errors is one of <b>William Shakespeare's</b> early plays. It is his shortest "
            "and one of his most farcical comedies, with a major part of the humour coming from slapstick "
            "and mistaken identity, in addition to puns and word play."
        ),
    }
]

DETAILS_ERROR = "Sorry, product details are currently unavailable for this book."
REVIEWS_ERROR = "Sorry, product reviews are currently unavailable for this book."
RATINGS_ERROR = "Sorry, product ratings are currently unavailable for this book."


@dataclass(frozen=True)
class Timeouts:
    """Istio's productpage values; tests shrink them to exercise the retry without waiting."""

    details_s: float = 3.0
    reviews_s: float = 3.0
    reviews_attempts: int = 2
    ratings_s: float = 3.0


def _segment(product_id: object) -> str:
    # The API passes the caller's id through; quoted, it stays one path segment upstream.
    return quote(str(product_id), safe="")


class Upstreams:
    def __init__(self, settings: Settings, client: httpx.AsyncClient, timeouts: Timeouts) -> None:
        self.settings = settings
        self.client = client
        self.timeouts = timeouts

    async def details(self, product_id: object, headers: dict[str, str]) -> Fetched:
        url = f"{self.settings.details_url}/details/{_segment(product_id)}"
        return await get_json(self.client, url, headers, self.timeouts.details_s)

    async def reviews(self, product_id: object, headers: dict[str, str]) -> Fetched:
        url = f"{self.settings.reviews_url}/reviews/{_segment(product_id)}"
        fetched = Fetched(None)
        # Istio retries on any failure, timeouts and non-200 answers alike.
        for _ in range(self.timeouts.reviews_attempts):
            fetched = await get_json(self.client, url, headers, self.timeouts.reviews_s)
            if fetched.ok:
                break
        return fetched

    async def ratings(self, product_id: object, headers: dict[str, str]) -> Fetched:
        url = f"{self.settings.ratings_url}/ratings/{_segment(product_id)}"
        return await get_json(self.client, url, headers, self.timeouts.ratings_s)


def _user(request: Request, settings: Settings) -> str:
    return decode_session(request.cookies.get(COOKIE_NAME), settings.session_secret) or ""


def _headers(request: Request, settings: Settings) -> dict[str, str]:
    # The signed-in user wins; without one an incoming `end-user` (a test, a gateway) is kept.
    return forward_headers(request.headers, end_user=_user(request, settings) or None)


def _back(request: Request) -> str:
    # Istio redirects to the Referer; keeping only its path keeps the redirect on this site.
    referer = urlsplit(request.headers.get("referer", ""))
    if not referer.path:
        return "/productpage"
    return referer.path + (f"?{referer.query}" if referer.query else "")


def _json(fetched: Fetched, error: str) -> Response:
    if fetched.ok:
        return Response(json.dumps(fetched.body), media_type="application/json")
    return Response(json.dumps({"error": error}), status_code=fetched.status or 500,
                    media_type="application/json")


def create_app(
    settings: Settings, client: httpx.AsyncClient | None = None, timeouts: Timeouts | None = None,
) -> FastAPI:
    """The productpage app.  A given `client` is the caller's to close; otherwise one is made per run."""

    ours = client is None
    calls = Upstreams(settings, client or outbound_client(settings.proxy), timeouts or Timeouts())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if ours:
            await calls.client.aclose()

    app = FastAPI(title="productpage", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    add_request_log(app, "productpage")

    @app.get("/")
    @app.get("/index.html")
    async def index() -> HTMLResponse:
        return HTMLResponse(render_index())

    @app.get("/health")
    async def health() -> PlainTextResponse:
        return PlainTextResponse("Product page is healthy")

    @app.get("/login")
    async def login_form() -> HTMLResponse:
        return HTMLResponse(render_login())

    @app.post("/login")
    async def login(request: Request) -> RedirectResponse:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        user = (form.get("username") or [request.query_params.get("username", "")])[0].strip()
        response = RedirectResponse(_back(request), status_code=302)
        if user:
            response.set_cookie(COOKIE_NAME, encode_session(user, settings.session_secret), httponly=True,
                                samesite="lax")
        return response

    @app.get("/logout")
    async def logout(request: Request) -> RedirectResponse:
        response = RedirectResponse(_back(request), status_code=302)
        response.delete_cookie(COOKIE_NAME)
        return response

    @app.get("/productpage")
    async def productpage(request: Request) -> HTMLResponse:
        product_id = 0
        headers = _headers(request, settings)
        # Istio calls details then reviews one after the other; concurrently the page is no
        # slower than its slowest call, and the fault-injection timings are unchanged.
        details, reviews = await asyncio.gather(
            calls.details(product_id, headers), calls.reviews(product_id, headers),
        )
        page = render_productpage(PRODUCTS[product_id], details, reviews, _user(request, settings))
        return HTMLResponse(page)

    @app.get("/api/v1/products")
    async def products() -> Response:
        return Response(json.dumps(PRODUCTS), media_type="application/json")

    @app.get("/api/v1/products/{product_id}")
    async def product(product_id: str, request: Request) -> Response:
        return _json(await calls.details(product_id, _headers(request, settings)), DETAILS_ERROR)

    @app.get("/api/v1/products/{product_id}/reviews")
    async def product_reviews(product_id: str, request: Request) -> Response:
        return _json(await calls.reviews(product_id, _headers(request, settings)), REVIEWS_ERROR)

    @app.get("/api/v1/products/{product_id}/ratings")
    async def product_ratings(product_id: str, request: Request) -> Response:
        return _json(await calls.ratings(product_id, _headers(request, settings)), RATINGS_ERROR)

    return app
