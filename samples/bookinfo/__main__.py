"""`python -m samples.bookinfo <service> [--version v2] [--host 127.0.0.1] [--port 9080]`.

Runs one Bookinfo service until SIGTERM or SIGINT.  See `samples.bookinfo._config` for every
flag and its `BOOKINFO_*` environment variable.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from fastapi import FastAPI

from samples.bookinfo import details, productpage, ratings, reviews
from samples.bookinfo._config import Settings, parse_args
from samples.bookinfo._server import configure_logging, serve


def build_app(settings: Settings) -> FastAPI:
    if settings.service == "productpage":
        return productpage.create_app(settings)
    if settings.service == "details":
        return details.create_app(settings)
    if settings.service == "reviews":
        return reviews.create_app(settings)
    return ratings.create_app(settings)


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    configure_logging(settings.log_level)
    logging.getLogger("bookinfo").info(
        "starting %s on %s:%d (proxy=%s details=%s reviews=%s ratings=%s)",
        settings.instance, settings.host, settings.port, settings.proxy or "none",
        settings.details_url, settings.reviews_url, settings.ratings_url,
    )
    return serve(build_app(settings), settings.host, settings.port)


if __name__ == "__main__":
    sys.exit(main())
