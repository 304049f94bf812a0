"""/app-health/<container>/livez|readyz|startupz on the agent's monitoring port.

The kubelet's rewritten probes land here (plain HTTP on 15020, a port the capture rules
never redirect); each is answered by probing the app (`app_probing`) and passing on the
verdict: 2xx/3xx is success for the kubelet, anything else failure.  A path with no probe
is 404 (Istio answers 400; both fail the kubelet's probe).  Results are counted in
`agent_app_probes_total` and logged when a probe starts or stops failing, not on every
probe.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter

from services.agent.app_probers import AppProbe
from services.agent.app_probing import AppProber, ProbeResult

log = structlog.get_logger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class AppHealth:
    """An ASGI app for the monitoring server: the app's probes, answered by the agent."""

    def __init__(self, probes: Mapping[str, AppProbe], prober: AppProber, registry: CollectorRegistry) -> None:
        self.probes = dict(probes)
        self.prober = prober
        self._results = Counter("agent_app_probes", "app probes answered, by path and result",
                                ["probe", "result"], registry=registry)
        self._passing: dict[str, bool] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope.get("path", "")
        probe = self.probes.get(path)
        if probe is None:
            await _respond(send, ProbeResult(404, "no such probe", f"no app probe at {path}\n".encode()))
            return
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope.get("headers", [])]
        result = await self.prober.probe(probe, headers)
        self._record(probe, result)
        await _respond(send, result)

    async def aclose(self) -> None:
        await self.prober.aclose()

    def _record(self, probe: AppProbe, result: ProbeResult) -> None:
        self._results.labels(probe.path, "success" if result.ok else "failure").inc()
        if self._passing.get(probe.path) == result.ok:
            return
        self._passing[probe.path] = result.ok
        if result.ok:
            log.info("app probe passing", probe=probe.path, kind=probe.kind, status=result.status)
        else:
            log.warning("app probe failing", probe=probe.path, kind=probe.kind, status=result.status,
                        reason=result.reason)


async def _respond(send: Send, result: ProbeResult) -> None:
    await send({"type": "http.response.start", "status": result.status,
                "headers": [(b"content-type", result.content_type.encode("latin-1", "replace")),
                            (b"content-length", str(len(result.body)).encode())]})
    await send({"type": "http.response.body", "body": result.body})
