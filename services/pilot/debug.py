"""Pilot's debug endpoints, shaped like Istio's /debug/* on the monitoring port."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException, Response
from google.protobuf import json_format

from libs.envoy import short_type
from services.pilot.networking.generator import generate
from services.pilot.xds.server import AdsServer


def _watch_state(server: AdsServer) -> list[dict[str, Any]]:
    rows = []
    for connection in server.connections:
        # `version`: the newest push this stream has processed (sent, or found unchanged).
        row: dict[str, Any] = {"proxy": connection.proxy.id, "connection": connection.id,
                               "version": connection.snapshot_version, "types": {}}
        for type_url, watch in connection.watches.items():
            if not watch.subscribed:
                continue
            row["types"][short_type(type_url)] = {
                "sent": watch.version_sent,
                "acked": watch.version_acked,
                "nonce": watch.nonce,
                "awaiting_ack": watch.awaiting_ack,
                "resources": len(watch.sent),
                "last_nack": None if watch.last_nack is None else {
                    "version": watch.last_nack.version,
                    "nonce": watch.last_nack.nonce,
                    "error": watch.last_nack.message,
                },
            }
        rows.append(row)
    return rows


def router(server: AdsServer) -> APIRouter:
    api = APIRouter(prefix="/debug")

    @api.get("/syncz")
    async def syncz() -> dict[str, Any]:
        push = server.cache.push_context
        return {"version": push.version if push else None, "proxies": _watch_state(server)}

    @api.get("/configz")
    async def configz() -> dict[str, Any]:
        push = server.cache.push_context
        if push is None:
            return {"version": None, "resources": []}
        return {"version": push.version, "resources": [r.to_dict() for r in push.config.resources.values()]}

    @api.get("/registryz")
    async def registryz() -> dict[str, Any]:
        push = server.cache.push_context
        if push is None:
            return {"version": None, "services": []}
        services = []
        for service in sorted(push.services.values(), key=lambda s: s.hostname):
            services.append({
                "hostname": service.hostname,
                "namespace": service.namespace,
                "resolution": service.resolution.value,
                "meshExternal": service.mesh_external,
                "source": service.source,
                "ports": [{"name": p.name, "port": p.number, "protocol": p.protocol.value} for p in service.ports],
                "endpoints": {
                    str(p.number): [f"{e.address}:{e.port}"
                                    for e in push.endpoints.get((service.hostname, p.number), ())]
                    for p in service.ports
                },
            })
        return {"version": push.version, "services": services}

    @api.get("/config_dump")
    async def config_dump(proxyID: str) -> Response:
        for connection in server.connections:
            if connection.proxy.id == proxyID or connection.proxy.id.split("~")[2] == proxyID:
                push = server.cache.push_context
                if push is None:
                    raise HTTPException(503, "no config loaded yet")
                config = generate(connection.proxy, push)
                body = {
                    "version": config.version,
                    "warnings": list(config.warnings),
                    "resources": {
                        short_type(type_url): [json_format.MessageToDict(r) for r in by_name.values()]
                        for type_url, by_name in config.resources.items()
                    },
                }
                return Response(json.dumps(body, indent=1), media_type="application/json")
        raise HTTPException(404, f"no connected proxy {proxyID}")

    return api
