"""Settings, the outbound proxy choice, header forwarding and the session cookie."""

from __future__ import annotations

import pytest

from samples.bookinfo._config import Settings, parse_args, proxy_from_env
from samples.bookinfo._headers import FORWARDED_HEADERS, forward_headers
from samples.bookinfo._session import decode_session, encode_session


def test_defaults_are_istios_service_names() -> None:
    settings = parse_args(["productpage"], env={})
    assert settings == Settings(
        service="productpage", port=9080, proxy=None, details_url="http://details:9080",
        reviews_url="http://reviews:9080", ratings_url="http://ratings:9080",
    )


def test_flags_win_over_environment() -> None:
    env = {"BOOKINFO_PORT": "1111", "BOOKINFO_VERSION": "v3", "BOOKINFO_RATINGS_URL": "http://127.0.0.1:2/",
           "BOOKINFO_HOST": "127.0.10.3", "HTTP_PROXY": "http://127.0.10.3:15001"}
    from_env = parse_args(["reviews"], env=env)
    assert (from_env.port, from_env.version, from_env.ratings_url, from_env.host, from_env.proxy) == (
        1111, "v3", "http://127.0.0.1:2", "127.0.10.3", "http://127.0.10.3:15001")
    flags = parse_args(["reviews", "--port", "2222", "--version", "v2", "--ratings-url", "http://x:1",
                        "--proxy", ""], env=env)
    assert (flags.port, flags.version, flags.ratings_url, flags.proxy) == (2222, "v2", "http://x:1", None)
    assert flags.instance == "reviews-v2"


def test_services_domain_qualifies_default_names() -> None:
    settings = parse_args(["productpage"], env={"SERVICES_DOMAIN": "bookinfo.svc.cluster.local"})
    assert settings.reviews_url == "http://reviews.bookinfo.svc.cluster.local:9080"


def test_unknown_service_or_version_is_refused() -> None:
    with pytest.raises(SystemExit):
        parse_args(["catalog"], env={})
    with pytest.raises(SystemExit):
        parse_args(["reviews", "--version", "v4"], env={})


@pytest.mark.parametrize(("env", "proxy"), [
    ({}, None),
    ({"HTTP_PROXY": "http://127.0.10.3:15001"}, "http://127.0.10.3:15001"),
    ({"HTTP_PROXY": "127.0.10.3:15001"}, "http://127.0.10.3:15001"),
    ({"http_proxy": "http://a:1", "HTTP_PROXY": "http://b:2"}, "http://a:1"),
    ({"BOOKINFO_PROXY": "http://c:3", "HTTP_PROXY": "http://b:2"}, "http://c:3"),
    ({"HTTP_PROXY": "  "}, None),
    # NO_PROXY must not take the sidecar out of the path, whatever it lists.
    ({"HTTP_PROXY": "http://b:2", "NO_PROXY": "*", "no_proxy": "reviews,details,ratings"}, "http://b:2"),
])
def test_proxy_comes_from_the_environment(env: dict[str, str], proxy: str | None) -> None:
    assert proxy_from_env(env) == proxy


def test_forwarded_headers_cover_istios_list() -> None:
    istio = {"x-request-id", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags",
             "x-ot-span-context", "x-datadog-trace-id", "x-datadog-parent-id", "x-datadog-sampling-priority",
             "traceparent", "tracestate", "x-cloud-trace-context", "grpc-trace-bin", "sw8", "end-user",
             "user-agent", "cookie", "authorization", "jwt", "b3"}
    assert set(FORWARDED_HEADERS) == istio


def test_forward_headers_copies_only_the_list_and_lets_the_session_user_win() -> None:
    incoming = {"x-request-id": "r", "traceparent": "t", "end-user": "alice", "host": "h",
                "content-length": "3"}
    assert forward_headers(incoming) == {"x-request-id": "r", "traceparent": "t", "end-user": "alice"}
    assert forward_headers(incoming, end_user="jason")["end-user"] == "jason"


def test_session_round_trip_and_tampering() -> None:
    cookie = encode_session("jason", "k")
    assert decode_session(cookie, "k") == "jason"
    assert decode_session(cookie, "other") is None
    payload, signature = cookie.rsplit(".", 1)
    assert decode_session(encode_session("admin", "k").rsplit(".", 1)[0] + "." + signature, "k") is None
    assert decode_session(payload, "k") is None
    for junk in (None, "", "x.y", "!!!.abc"):
        assert decode_session(junk, "k") is None
    # Cookie-safe: no characters that need quoting.
    assert all(c.isalnum() or c in "-_." for c in cookie)
