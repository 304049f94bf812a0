"""An in-process Bookinfo: services wired together through httpx transports, no sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import FastAPI

from samples.bookinfo import details, productpage, ratings, reviews
from samples.bookinfo._config import Settings

Handler = (Callable[[httpx.Request], httpx.Response]
           | Callable[[httpx.Request], Coroutine[None, None, httpx.Response]])


class Recording(httpx.AsyncBaseTransport):
    """Passes requests on and keeps them, so tests can look at what a service sent upstream."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)


class Router(httpx.AsyncBaseTransport):
    """Sends each request to the upstream registered for its host; unknown hosts are refused."""

    def __init__(self) -> None:
        self.upstreams: dict[str, Recording] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        upstream = self.upstreams.get(f"{request.url.host}:{request.url.port}")
        if upstream is None:
            raise httpx.ConnectError(f"connection refused: {request.url}", request=request)
        return await upstream.handle_async_request(request)


@dataclass
class Mesh:
    """Upstreams by name (`reviews`), each an ASGI app or a mock handler."""

    router: Router = field(default_factory=Router)
    client: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.AsyncClient(transport=self.router)

    def add(self, name: str, upstream: FastAPI | Handler) -> Recording:
        inner: httpx.AsyncBaseTransport
        if isinstance(upstream, FastAPI):
            inner = httpx.ASGITransport(app=upstream)
        else:
            inner = httpx.MockTransport(upstream)
        # The default upstream URLs are http://<name>:9080, as in Istio's Bookinfo.
        recording = self.router.upstreams[f"{name}:9080"] = Recording(inner)
        return recording

    def reviews(self, version: str) -> FastAPI:
        return reviews.create_app(Settings(service="reviews", version=version), client=self.client)

    def productpage(self, timeouts: productpage.Timeouts | None = None) -> FastAPI:
        return productpage.create_app(Settings(service="productpage"), client=self.client, timeouts=timeouts)

    def standard(self, version: str = "v2") -> FastAPI:
        """A productpage in front of real details, reviews `version` and ratings."""
        self.add("details", details.create_app(Settings(service="details")))
        self.add("ratings", ratings.create_app(Settings(service="ratings")))
        self.add("reviews", self.reviews(version))
        return self.productpage()


@pytest.fixture
async def mesh() -> AsyncIterator[Mesh]:
    mesh = Mesh()
    async with mesh.client:
        yield mesh


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
