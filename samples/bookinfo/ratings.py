"""ratings: stars per reviewer, as Istio's Node.js ratings (v1, in memory) answers them.

Like Istio's v1, `POST /ratings/<id>` with a JSON object replaces that product's ratings in
memory, so a demo can change the stars without a database.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from samples.bookinfo._config import Settings
from samples.bookinfo._server import add_request_log

DEFAULT_RATINGS: dict[str, int] = {"Reviewer1": 5, "Reviewer2": 4}


def _bad_id() -> JSONResponse:
    return JSONResponse({"error": "please provide numeric product ID"}, status_code=400)


def _product_id(raw: str) -> int | None:
    try:
        return int(raw)
    except ValueError:
        return None


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="ratings", docs_url=None, redoc_url=None, openapi_url=None)
    add_request_log(app, "ratings")
    # Ratings posted at run time, per product id; lost on restart, as in Istio's v1.
    added: dict[int, dict[str, Any]] = {}

    def ratings_for(product_id: int) -> dict[str, Any]:
        return added.get(product_id) or {"id": product_id, "ratings": dict(DEFAULT_RATINGS)}

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"status": "Ratings is healthy"})

    @app.get("/ratings/{product_id}")
    async def get_ratings(product_id: str) -> JSONResponse:
        number = _product_id(product_id)
        if number is None:
            return _bad_id()
        return JSONResponse(ratings_for(number))

    @app.post("/ratings/{product_id}")
    async def post_ratings(product_id: str, request: Request) -> JSONResponse:
        number = _product_id(product_id)
        if number is None:
            return _bad_id()
        try:
            ratings = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"error": "please provide valid ratings JSON"}, status_code=400)
        added[number] = {"id": number, "ratings": ratings}
        return JSONResponse(ratings_for(number))

    return app
