"""Settings for every Bookinfo service: command-line flags, with `BOOKINFO_*` environment fallbacks.

Upstreams default to the Kubernetes-style names Istio's Bookinfo uses (`http://reviews:9080`), so
that inside the local mesh the calls go to the sidecar and Istio routing applies to them.  Tests
override them to point services straight at each other.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SERVICES = ("productpage", "details", "reviews", "ratings")
REVIEWS_VERSIONS = ("v1", "v2", "v3")
DEFAULT_PORT = 9080

# A fixed key, like the one hard-coded in Istio's productpage: the session cookie only carries a
# demo user name, and a fixed key lets a restarted productpage keep reading existing cookies.
DEFAULT_SESSION_SECRET = "mizzen-bookinfo-demo-session-key"


@dataclass(frozen=True)
class Settings:
    service: str
    version: str = "v1"
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    details_url: str = "http://details:9080"
    reviews_url: str = "http://reviews:9080"
    ratings_url: str = "http://ratings:9080"
    # Outbound HTTP proxy (the sidecar); None sends requests straight to the upstream.
    proxy: str | None = None
    # Shown on the product page as "Reviews served by"; Istio uses the pod's name here.
    podname: str = ""
    clustername: str | None = None
    session_secret: str = DEFAULT_SESSION_SECRET
    log_level: str = "INFO"

    @property
    def instance(self) -> str:
        if self.podname:
            return self.podname
        return f"reviews-{self.version}" if self.service == "reviews" else self.service


def proxy_from_env(env: Mapping[str, str]) -> str | None:
    """The outbound proxy the sidecar set up for us, or None.

    Only the proxy address is read; `NO_PROXY` is deliberately not consulted.  In the mesh every
    service call must go through the sidecar, and a `NO_PROXY` inherited from a developer's shell
    (or `*`) would silently bypass it and with it all of Istio's routing.
    """
    for name in ("BOOKINFO_PROXY", "http_proxy", "HTTP_PROXY"):
        value = env.get(name, "").strip()
        if value:
            return value if "://" in value else f"http://{value}"
    return None


def _upstream(env: Mapping[str, str], name: str) -> str:
    # SERVICES_DOMAIN works as in Istio's Bookinfo: `reviews` becomes `reviews.<domain>`.
    domain = env.get("SERVICES_DOMAIN", "")
    default = f"http://{name}{'.' + domain if domain else ''}:9080"
    return env.get(f"BOOKINFO_{name.upper()}_URL", default).rstrip("/")


def parse_args(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(
        prog="python -m samples.bookinfo",
        description="Istio's Bookinfo sample, one service per process.",
    )
    parser.add_argument("service", choices=SERVICES, help="which Bookinfo service to run")
    parser.add_argument("--version", choices=REVIEWS_VERSIONS, default=env.get("BOOKINFO_VERSION", "v1"),
                        help="reviews version: v1 no stars, v2 black, v3 red (env BOOKINFO_VERSION)")
    parser.add_argument("--host", default=env.get("BOOKINFO_HOST", "127.0.0.1"), help="env BOOKINFO_HOST")
    parser.add_argument("--port", type=int, default=int(env.get("BOOKINFO_PORT", DEFAULT_PORT)),
                        help="env BOOKINFO_PORT")
    parser.add_argument("--details-url", default=_upstream(env, "details"), help="env BOOKINFO_DETAILS_URL")
    parser.add_argument("--reviews-url", default=_upstream(env, "reviews"), help="env BOOKINFO_REVIEWS_URL")
    parser.add_argument("--ratings-url", default=_upstream(env, "ratings"), help="env BOOKINFO_RATINGS_URL")
    parser.add_argument("--proxy", default=proxy_from_env(env),
                        help="outbound HTTP proxy (default: BOOKINFO_PROXY, http_proxy or HTTP_PROXY)")
    parser.add_argument("--podname", default=env.get("BOOKINFO_PODNAME", ""),
                        help="instance name shown on the page (env BOOKINFO_PODNAME)")
    parser.add_argument("--log-level", default=env.get("BOOKINFO_LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)
    return Settings(
        service=args.service,
        version=args.version,
        host=args.host,
        port=args.port,
        details_url=args.details_url.rstrip("/"),
        reviews_url=args.reviews_url.rstrip("/"),
        ratings_url=args.ratings_url.rstrip("/"),
        proxy=args.proxy or None,
        podname=args.podname,
        clustername=env.get("BOOKINFO_CLUSTER_NAME") or None,
        session_secret=env.get("BOOKINFO_SESSION_SECRET", DEFAULT_SESSION_SECRET),
        log_level=args.log_level.upper(),
    )
