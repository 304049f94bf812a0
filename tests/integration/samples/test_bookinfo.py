"""Bookinfo's four services as real processes on loopback ports, wired to each other directly
or through a recording forward proxy standing in for the sidecar."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from samples.echo import echo_handler
from tests.harness.ports import free_port
from tests.harness.processes import Process, ProcessGroup
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
REVIEWS_ERROR = "Sorry, product reviews are currently unavailable for this book."
RATINGS_ERROR = "Ratings service is currently unavailable"
TRACE = {
    "x-request-id": "6d1a7c9e-3f52-4b8e-9c41-0a2b3c4d5e6f",
    "x-b3-traceid": "463ac35c9f6413ad48485a3953bb6124",
    "x-b3-spanid": "a2fb4a1d1a96d312",
    "x-b3-sampled": "1",
    "traceparent": "00-463ac35c9f6413ad48485a3953bb6124-a2fb4a1d1a96d312-01",
    "b3": "463ac35c9f6413ad48485a3953bb6124-a2fb4a1d1a96d312-1",
}


@dataclass
class Service:
    process: Process
    url: str


class Bookinfo:
    """Starts services without waiting, then waits for all of them at once: startups overlap."""

    def __init__(self, processes: ProcessGroup) -> None:
        self.processes = processes
        self.pending: list[Service] = []
        self.started: list[Service] = []

    def start(self, name: str, *args: str, proxy: str = "", env: dict[str, str] | None = None) -> Service:
        port = free_port()
        # A proxy from the developer's shell must not leak in; tests that want one say so.
        # (The test's own requests use trust_env=False for the same reason.)
        merged = {"HTTP_PROXY": proxy, "http_proxy": proxy, "BOOKINFO_PROXY": "", **(env or {})}
        process = self.processes.python(name, "samples.bookinfo", *args, "--port", str(port),
                                        env=merged, cwd=REPO)
        service = Service(process, f"http://127.0.0.1:{port}")
        self.pending.append(service)
        self.started.append(service)
        return service

    def wait(self) -> None:
        # One client for all the polling: a fresh one per poll builds a TLS context each time,
        # CPU that the starting services need more.
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            for service in self.pending:
                def healthy(service: Service = service) -> bool:
                    if not service.process.alive():
                        pytest.fail(f"{service.process.name} exited:\n{service.process.log()}")
                    return client.get(f"{service.url}/health").status_code == 200
                wait_until(healthy, timeout=20, interval=0.05, what=f"{service.process.name} /health")
        self.pending.clear()

    def stop_all(self) -> dict[str, int | None]:
        """SIGTERM every service first and then reap them, so their shutdowns overlap."""
        for service in self.started:
            if service.process.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(service.process.pid, signal.SIGTERM)
        return {service.process.name: service.process.stop() for service in self.started}


@pytest.fixture
def bookinfo(processes: ProcessGroup) -> Iterator[Bookinfo]:
    services = Bookinfo(processes)
    yield services
    services.stop_all()


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threaded stdlib server on a free port, stopped on exit (polling fast: quick teardown)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


def page(productpage: Service, **kwargs: Any) -> str:
    response = httpx.get(f"{productpage.url}/productpage", timeout=15.0, trust_env=False, **kwargs)
    assert response.status_code == 200
    return response.text


def stars(html: str) -> list[tuple[str, int]]:
    return [(color, int(count)) for count, color in re.findall(r'data-stars="(\d)" data-color="(\w+)"', html)]


def version(html: str) -> str | None:
    match = re.search(r'<div id="reviews-version">([^<]*)</div>', html)
    return match.group(1) if match else None


def test_page_shows_details_and_stars_and_services_stop_cleanly(bookinfo: Bookinfo) -> None:
    details = bookinfo.start("details", "details")
    ratings = bookinfo.start("ratings", "ratings")
    v1 = bookinfo.start("reviews-v1", "reviews", "--version", "v1", "--ratings-url", ratings.url)
    v2 = bookinfo.start("reviews-v2", "reviews", "--version", "v2", "--ratings-url", ratings.url)
    v3 = bookinfo.start("reviews-v3", "reviews", "--version", "v3", "--ratings-url", ratings.url)
    productpage = bookinfo.start("productpage", "productpage", "--details-url", details.url,
                                 "--reviews-url", v2.url)
    bookinfo.wait()

    html = page(productpage)
    assert ">1234567890</td>" in html and ">PublisherA</td>" in html
    assert version(html) == "v2"
    assert stars(html) == [("black", 5), ("black", 4)]
    assert "Error fetching" not in html

    body = httpx.get(f"{v1.url}/reviews/0", trust_env=False).json()
    assert body["version"] == "v1" and all("rating" not in review for review in body["reviews"])
    body = httpx.get(f"{v3.url}/reviews/0", trust_env=False).json()
    assert body["version"] == "v3"
    assert [review["rating"] for review in body["reviews"]] == [{"stars": 5, "color": "red"},
                                                                 {"stars": 4, "color": "red"}]

    with httpx.Client(base_url=productpage.url, timeout=15.0, trust_env=False) as client:
        login = client.post("/login", data={"username": "jason"},
                            headers={"referer": f"{productpage.url}/productpage"})
        assert (login.status_code, login.headers["location"]) == (302, "/productpage")
        assert "Signed in as <b>jason</b>" in client.get("/productpage").text
    assert "end_user=jason" in v2.process.log()

    # SIGTERM: each drains and exits 0 rather than dying by the signal.
    codes = bookinfo.stop_all()
    assert codes == dict.fromkeys(codes, 0), (codes, [s.process.log() for s in bookinfo.started])


def test_tracing_and_end_user_headers_reach_details_reviews_and_ratings(bookinfo: Bookinfo) -> None:
    details_hits: list[dict[str, Any]] = []
    ratings_hits: list[dict[str, Any]] = []
    with serving(echo_handler("details", details_hits)) as details, \
            serving(echo_handler("ratings", ratings_hits)) as ratings:
        reviews = bookinfo.start("reviews-v2", "reviews", "--version", "v2", "--ratings-url", ratings)
        productpage = bookinfo.start("productpage", "productpage", "--details-url", details,
                                     "--reviews-url", reviews.url)
        bookinfo.wait()
        page(productpage, headers={**TRACE, "end-user": "jason", "x-not-forwarded": "1"})

    [to_details] = [hit for hit in details_hits if hit["path"] == "/details/0"]
    [to_ratings] = [hit for hit in ratings_hits if hit["path"] == "/ratings/0"]
    for hit in (to_details, to_ratings):
        for header, value in {**TRACE, "end-user": "jason"}.items():
            assert hit["headers"].get(header) == value, (hit["name"], header, hit["headers"])
        assert "x-not-forwarded" not in hit["headers"]
    # reviews logs the request it served with the ids a reader follows across services.
    assert "GET /reviews/0 200" in reviews.process.log()
    assert f"request_id={TRACE['x-request-id']} end_user=jason" in reviews.process.log()


def test_failures_show_istios_error_texts(bookinfo: Bookinfo) -> None:
    reviews = bookinfo.start("reviews-v2", "reviews", "--version", "v2", "--ratings-url", dead_url())
    productpage = bookinfo.start("productpage", "productpage", "--details-url", dead_url(),
                                 "--reviews-url", reviews.url)
    bookinfo.wait()

    # ratings and details down: reviews still answers, with the ratings error for each review.
    html = page(productpage)
    assert version(html) == "v2"
    assert html.count(RATINGS_ERROR) == 2 and stars(html) == []
    assert "Error fetching product details!" in html

    # reviews down too: the page still renders, with Istio's reviews error.
    assert reviews.process.stop() == 0
    html = page(productpage)
    assert "Error fetching product reviews!" in html and REVIEWS_ERROR in html
    assert version(html) is None


@dataclass
class ForwardProxy:
    """A stand-in for the sidecar's outbound listener: takes absolute-form requests, records their
    request line and headers, and forwards them to the address the host name maps to."""

    routes: dict[str, int]
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                proxy.seen.append((self.requestline, {k.lower(): v for k, v in self.headers.items()}))
                target = urlsplit(self.path)
                port = proxy.routes.get(target.netloc)
                if not self.path.startswith("http://") or port is None:
                    self.send_error(502, f"no route for {self.path}")
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                try:
                    upstream.request("GET", target.path, headers=dict(self.headers.items()))
                    response = upstream.getresponse()
                    body = response.read()
                finally:
                    upstream.close()
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def forward_proxy() -> Iterator[tuple[ForwardProxy, str]]:
    proxy = ForwardProxy(routes={})
    with serving(proxy.handler()) as url:
        yield proxy, url


def test_calls_by_service_name_go_through_http_proxy(bookinfo: Bookinfo,
                                                     forward_proxy: tuple[ForwardProxy, str]) -> None:
    proxy, proxy_url = forward_proxy
    # No upstream overrides: services call http://details:9080 and friends, which only the proxy
    # can reach.  NO_PROXY=* must not make them bypass it.
    mesh_env = {"NO_PROXY": "*", "no_proxy": "*"}
    details = bookinfo.start("details", "details", proxy=proxy_url, env=mesh_env)
    ratings = bookinfo.start("ratings", "ratings", proxy=proxy_url, env=mesh_env)
    reviews = bookinfo.start("reviews-v2", "reviews", "--version", "v2", proxy=proxy_url, env=mesh_env)
    productpage = bookinfo.start("productpage", "productpage", proxy=proxy_url, env=mesh_env)
    bookinfo.wait()
    for name, service in (("details", details), ("reviews", reviews), ("ratings", ratings)):
        proxy.routes[f"{name}:9080"] = int(service.url.rsplit(":", 1)[1])

    html = page(productpage, headers={"x-request-id": TRACE["x-request-id"]})
    assert ">1234567890</td>" in html
    assert (version(html), stars(html)) == ("v2", [("black", 5), ("black", 4)])

    lines = [line for line, _ in proxy.seen]
    assert "GET http://details:9080/details/0 HTTP/1.1" in lines
    assert "GET http://reviews:9080/reviews/0 HTTP/1.1" in lines
    assert "GET http://ratings:9080/ratings/0 HTTP/1.1" in lines  # from reviews, through its own proxy
    for _, headers in proxy.seen:
        assert headers["x-request-id"] == TRACE["x-request-id"]
