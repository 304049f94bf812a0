"""reviews v1/v2/v3: two reviews of the book, as Istio's Java reviews service answers them.

v1 does not call ratings; v2 shows black stars and v3 red ones.  The ratings timeout follows
Istio, which keys it on the star colour: 10 s for black (v2), 2.5 s otherwise (v3).  That
difference is what Istio's fault-injection task turns on: a 7 s ratings delay outlasts
productpage's 3 s reviews timeout when v2 waits for it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from samples.bookinfo._client import get_json, outbound_client
from samples.bookinfo._config import Settings
from samples.bookinfo._headers import forward_headers
from samples.bookinfo._server import add_request_log

STAR_COLORS: dict[str, str | None] = {"v1": None, "v2": "black", "v3": "red"}
RATINGS_UNAVAILABLE = "Ratings service is currently unavailable"

REVIEWS: tuple[tuple[str, str], ...] = (
    ("Reviewer1", "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"),
    ("Reviewer2", "Absolutely fun and entertaining. "
                  "The play lacks thematic depth when compared to other plays by Shakespeare."),
)


def ratings_timeout(color: str) -> float:
    return 10.0 if color == "black" else 2.5


def build_reviews(product_id: int, settings: Settings, stars: dict[str, int] | None) -> dict[str, Any]:
    """Istio's reviews JSON, plus `version`.  `stars` is None for v1, which has no ratings at all."""
    color = STAR_COLORS[settings.version]
    reviews = []
    for reviewer, text in REVIEWS:
        review: dict[str, Any] = {"reviewer": reviewer, "text": text}
        if color is not None:
            count = (stars or {}).get(reviewer)
            if count is None:
                review["rating"] = {"error": RATINGS_UNAVAILABLE}
            else:
                review["rating"] = {"stars": count, "color": color}
        reviews.append(review)
    return {
        # A string, as Istio's reviews writes it.
        "id": str(product_id),
        "podname": settings.instance,
        # Istio's Java prints an unset CLUSTER_NAME as "null", and its page checks for that text.
        "clustername": settings.clustername or "null",
        "version": settings.version,
        "reviews": reviews,
    }


def _stars(body: Any) -> dict[str, int]:
    """Per-reviewer stars from a ratings answer; reviewers missing from it get the error instead."""
    ratings = body.get("ratings") if isinstance(body, dict) else None
    if not isinstance(ratings, dict):
        return {}
    # bool is an int in Python; JSON true is not a star count.
    return {name: value for name, value in ratings.items()
            if isinstance(value, int) and not isinstance(value, bool)}


def create_app(settings: Settings, client: httpx.AsyncClient | None = None) -> FastAPI:
    """The reviews app for `settings.version`.  A given `client` is the caller's to close."""
    if settings.version not in STAR_COLORS:
        raise ValueError(f"unknown reviews version {settings.version!r}")
    color = STAR_COLORS[settings.version]
    ours = client is None
    outbound = client or outbound_client(settings.proxy)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if ours:
            await outbound.aclose()

    app = FastAPI(title=f"reviews-{settings.version}", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    add_request_log(app, "reviews")

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"status": "Reviews is healthy"})

    @app.get("/reviews/{product_id}")
    async def reviews(product_id: str, request: Request) -> JSONResponse:
        try:
            number = int(product_id)
        except ValueError:
            # Istio's JAX-RS endpoint takes an int path parameter; anything else does not match.
            return JSONResponse({"error": "not found"}, status_code=404)
        stars: dict[str, int] | None = None
        if color is not None:
            fetched = await get_json(outbound, f"{settings.ratings_url}/ratings/{number}",
                                     forward_headers(request.headers), ratings_timeout(color))
            stars = _stars(fetched.body) if fetched.ok else {}
        return JSONResponse(build_reviews(number, settings, stars))

    return app
