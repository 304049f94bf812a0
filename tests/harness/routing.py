"""Istio YAML and requests for VirtualService behaviour tests through a real gateway.

Each test module applies one file of config (services, gateways, one VirtualService per
feature, each on its own host), and each test talks to its feature's host.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

import httpx

from tests.harness.http import HTTP


def gateway_yaml(name: str, ports: list[int], *, namespace: str = "default", selector: str = "ingressgateway") -> str:
    servers = "\n".join(f"  - port: {{number: {p}, name: http-{p}, protocol: HTTP}}\n    hosts: [\"*\"]" for p in ports)
    return f"""\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  selector: {{istio: {selector}}}
  servers:
{servers}
"""


def version_subsets(host: str, *versions: str, namespace: str = "default") -> str:
    """A DestinationRule on `host` with one subset per version, selecting `version: <v>`."""
    subsets = "\n".join(f"  - {{name: {v}, labels: {{version: {v}}}}}" for v in versions)
    return f"""\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: {host}, namespace: {namespace}}}
spec:
  host: {host}
  subsets:
{subsets}
"""


def virtual_service(name: str, http: str, *, hosts: list[str] | None = None, gateways: list[str] | None = None,
                    namespace: str = "default") -> str:
    """A VirtualService on `<name>.test` (unless `hosts`) bound to gateway `gw`; `http` is
    the YAML list of its HTTP rules."""
    return f"""\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  hosts: {json.dumps(hosts or [f"{name}.test"])}
  gateways: {json.dumps(gateways or ["gw"])}
  http:
{textwrap.indent(textwrap.dedent(http).strip(), "  ")}
"""


def documents(*parts: str) -> str:
    return "---\n".join(parts)


def ask(port: int, host: str, path: str = "/", *, method: str = "GET", client: httpx.Client | None = None,
        **headers: str) -> httpx.Response:
    """One request to the gateway on `port` for virtual host `host`, on a new connection
    unless `client` keeps one; header names may use underscores for dashes
    (`x_echo_status="503"`)."""
    sent = {"host": host, **{k.replace("_", "-"): v for k, v in headers.items()}}
    url = f"http://127.0.0.1:{port}{path}"
    if client is None:
        return HTTP.request(method, url, headers=sent, timeout=10)
    return client.request(method, url, headers=sent)


def answered_by(response: httpx.Response) -> str:
    """`upstream:<name>` when an upstream answered, else the direct response body."""
    if "x-upstream" in response.headers:
        return f"upstream:{response.headers['x-upstream']}"
    return response.text


def echoed(response: httpx.Response) -> dict[str, Any]:
    """What the echo upstream received (method, path, headers, body)."""
    body: dict[str, Any] = response.json()
    return body
