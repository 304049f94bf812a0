"""details: the book's facts, as Istio's Ruby details service answers them.

Istio's details can also fetch from Google Books (`ENABLE_EXTERNAL_BOOK_SERVICE`); the local
mesh has no egress to show that with, so only the built-in book is served.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from samples.bookinfo._config import Settings
from samples.bookinfo._server import add_request_log


def book_details(product_id: int) -> dict[str, Any]:
    # Every id gets the same book, as in Istio (its TODO: "provide details on different books").
    return {
        "id": product_id,
        "author": "William Shakespeare",
        "year": 1595,
        "type": "paperback",
        "pages": 200,
        "publisher": "PublisherA",
        "language": "English",
        "ISBN-10": "1234567890",
        "ISBN-13": "123-1234567890",
    }


def _bad_id() -> JSONResponse:
    return JSONResponse({"error": "please provide numeric product id"}, status_code=400)


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="details", docs_url=None, redoc_url=None, openapi_url=None)
    add_request_log(app, "details")

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"status": "Details is healthy"})

    @app.get("/details")
    async def no_id() -> JSONResponse:
        return _bad_id()

    @app.get("/details/{product_id}")
    async def details(product_id: str) -> JSONResponse:
        try:
            number = int(product_id)
        except ValueError:
            return _bad_id()
        return JSONResponse(book_details(number))

    return app
