"""The app probes the injector moved onto the agent (Istio's ISTIO_KUBE_APP_PROBERS).

A STRICT mTLS sidecar refuses the kubelet's plaintext probes, so the injector rewrites each
app container's liveness, readiness and startup probe to `httpGet` on the agent's port 15020,
path `/app-health/<container>/livez|readyz|startupz`, and hands the agent the originals as
one JSON object keyed by those paths (istio `pilot/cmd/pilot-agent/status/server.go`,
`KubeAppProbers`):

    {"/app-health/web/readyz": {"httpGet": {"path": "/health", "port": 8080, "scheme": "HTTP",
                                            "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
                                "timeoutSeconds": 1},
     "/app-health/web/livez": {"tcpSocket": {"port": 8080}, "timeoutSeconds": 1},
     "/app-health/api/startupz": {"grpc": {"port": 9090, "service": "api"}}}

Each value is a Kubernetes Probe reduced to its action (exactly one of `httpGet`,
`tcpSocket`, `grpc`) and `timeoutSeconds` (Kubernetes' default 1 when absent or 0); other
probe fields are ignored, as Istio ignores them.  Ports are numbers: the injector resolves
named ports, and Istio's agent refuses them too.  `httpGet.host` is ignored, as Istio
ignores it: the agent probes the pod's own address.  Parsed once at start; anything else is
a configuration error naming the setting and the path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.agent.errors import AppProbersError

PATH = re.compile(r"^/app-health/[^/]+/(livez|readyz|startupz)$")
# Kubernetes' default probe timeoutSeconds.
DEFAULT_TIMEOUT_S = 1
ACTIONS = ("httpGet", "tcpSocket", "grpc")


@dataclass(frozen=True)
class HttpGet:
    port: int
    path: str = "/"
    scheme: str = "HTTP"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class TcpSocket:
    port: int


@dataclass(frozen=True)
class Grpc:
    port: int
    service: str = ""


Action = HttpGet | TcpSocket | Grpc


@dataclass(frozen=True)
class AppProbe:
    """One original probe, served at `path` on the agent's monitoring port."""

    path: str
    action: Action
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def kind(self) -> str:
        return {HttpGet: "httpGet", TcpSocket: "tcpSocket", Grpc: "grpc"}[type(self.action)]


def parse_app_probers(raw: str) -> dict[str, AppProbe]:
    """The probes in `raw` (the setting's JSON) by path; empty for an empty setting."""
    if not raw.strip():
        return {}
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise AppProbersError(f"not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise AppProbersError(f"must be a JSON object keyed by /app-health/ paths, not {_kind(document)}")
    return {path: _probe(path, spec) for path, spec in document.items()}


def _probe(path: str, spec: Any) -> AppProbe:
    if not PATH.match(path):
        raise AppProbersError(f"{path!r}: not a path of the form /app-health/<container>/livez|readyz|startupz")
    if not isinstance(spec, dict):
        raise AppProbersError(f"{path}: must be an object (a Kubernetes probe), not {_kind(spec)}")
    present = [name for name in ACTIONS if spec.get(name) is not None]
    if len(present) != 1:
        raise AppProbersError(f"{path}: needs exactly one of httpGet, tcpSocket or grpc"
                              + (f" (has {', '.join(present)})" if present else ""))
    name = present[0]
    fields = spec[name]
    if not isinstance(fields, dict):
        raise AppProbersError(f"{path}.{name}: must be an object, not {_kind(fields)}")
    where = f"{path}.{name}"
    action: Action
    if name == "httpGet":
        action = _http_get(where, fields)
    elif name == "tcpSocket":
        action = TcpSocket(port=_port(where, fields))
    else:
        service = fields.get("service") or ""
        if not isinstance(service, str):
            raise AppProbersError(f"{where}.service: must be a string, not {_kind(service)}")
        action = Grpc(port=_port(where, fields), service=service)
    return AppProbe(path, action, _timeout(path, spec.get("timeoutSeconds")))


def _http_get(where: str, fields: Mapping[str, Any]) -> HttpGet:
    path = fields.get("path") or "/"
    if not isinstance(path, str):
        raise AppProbersError(f"{where}.path: must be a string, not {_kind(path)}")
    scheme = fields.get("scheme") or "HTTP"
    if scheme not in ("HTTP", "HTTPS"):
        raise AppProbersError(f"{where}.scheme: {scheme!r} is not HTTP or HTTPS")
    headers = fields.get("httpHeaders") or []
    if not isinstance(headers, list):
        raise AppProbersError(f"{where}.httpHeaders: must be a list, not {_kind(headers)}")
    pairs = []
    for index, header in enumerate(headers):
        if (not isinstance(header, dict) or not isinstance(header.get("name"), str) or not header["name"]
                or not isinstance(header.get("value", ""), str)):
            raise AppProbersError(f"{where}.httpHeaders[{index}]: must be {{name, value}} strings")
        pairs.append((header["name"], header.get("value", "")))
    return HttpGet(port=_port(where, fields), path=path if path.startswith("/") else "/" + path, scheme=scheme,
                   headers=tuple(pairs))


def _port(where: str, fields: Mapping[str, Any]) -> int:
    port = fields.get("port")
    if isinstance(port, str):
        raise AppProbersError(f"{where}.port: {port!r} must be a number (the injector resolves named ports)")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise AppProbersError(f"{where}.port: must be a port number 1-65535, not {port!r}")
    return port


def _timeout(path: str, value: Any) -> float:
    if value is None:
        return DEFAULT_TIMEOUT_S
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise AppProbersError(f"{path}.timeoutSeconds: must be a whole number of seconds >= 0, not {value!r}")
    return value or DEFAULT_TIMEOUT_S


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")
