"""`POST /debug/dryrun`: what applying or deleting config would change in each proxy's
Envoy config, without doing it (what `mizzenctl apply --dry-run` and `delete --dry-run` show).

The body is YAML or JSON documents (a `kind: List` too), as `mizzenctl apply -f` reads
them, validated with galley's rules; `?namespace=` is the namespace of documents without
one (`default`), `?proxyID=` limits the answer to one proxy (a node id,
`<pod>.<namespace>` or a pod name), else every proxy connected to this pilot.  With
`?action=apply` (the default) each resource replaces the one with its kind, namespace and
name; with `?action=delete` the resources the documents name are deleted (an invalid spec
still names what to delete, as in kubectl).  The answer lists, per proxy whose config
would change, each changed cluster, load assignment, listener and route configuration with
a unified diff of its canonical JSON, from what pilot last sent the proxy to what it would
send.

Nothing is stored or pushed: the translation runs on its own copy of the push, with its
own memo, on a worker thread (one dry run at a time), so live streams keep being served
and their caches and versions stay as they are.  Invalid config to apply is refused (422)
with the resource, the field and the reason; kinds pilot does not serve are listed as ignored.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from libs.bus import config_key
from libs.config import Resource, parse_text
from libs.config.report import report
from services.pilot import dryrun
from services.pilot.debug import find_connection, proxy_name
from services.pilot.errors import BodyTooLarge, InvalidProposal, NotReady, UnknownAction
from services.pilot.xds.server import AdsServer

__all__ = ["MAX_BODY_BYTES", "router"]

# galley's limit for an apply.
MAX_BODY_BYTES = 4 * 1024 * 1024
ACTIONS = ("apply", "delete")


def router(server: AdsServer, *, mesh_of: dryrun.MeshOf, instance: str = "pilot") -> APIRouter:
    """`mesh_of`: the mesh config a config snapshot makes, as pilot's pushes compute it."""
    api = APIRouter(prefix="/debug")
    one_at_a_time = asyncio.Lock()

    @api.post("/dryrun")
    async def dry_run(request: Request, namespace: str = "default", proxyID: str | None = None,
                      action: str = "apply") -> dict[str, Any]:
        if action not in ACTIONS:
            raise UnknownAction(action, ACTIONS)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise BodyTooLarge(MAX_BODY_BYTES)
        # Off the event loop, like the translation: a large body takes a while to validate.
        parsed = await asyncio.to_thread(parse_text, body, "request", default_namespace=namespace)
        summary = report(parsed)
        if action == "apply" and summary.errors:
            raise InvalidProposal(summary.errors)
        push = server.cache.push_context
        if push is None:
            raise NotReady("pilot has not loaded its config yet: there is nothing to compare with")
        connections = [find_connection(server, proxyID)] if proxyID is not None else \
            sorted(server.connections, key=proxy_name)
        holdings = [dryrun.Holding.of(c, proxy_name(c)) for c in connections]
        resources: list[Resource] = []
        deleted: list[str] = []
        missing: list[str] = []
        if action == "apply":
            resources = [resource for _, resource in parsed.resources]
            named = [resource.ref for resource in resources]
        else:
            # Deleting needs only identity: an invalid spec still names what to delete.
            named = []
            for kind, ns, name in parsed.identities():
                key = _key(kind, ns, name)
                (named if key in push.config.resources else missing).append(f"{kind} {ns}/{name}")
                deleted.append(key)

        def work() -> list[dryrun.ProxyEffect]:
            proposed = dryrun.proposed_push(push, resources, mesh_of, deleted=deleted)
            return dryrun.effects(proposed, holdings, current_version=push.version, action=action)

        async with one_at_a_time:
            found = await asyncio.to_thread(work)
        return {
            "pilot": instance,
            "version": push.version,
            "action": action,
            "resources": named,
            "notFound": missing,
            "ignored": summary.unsupported,
            "proxies": [effect.as_dict() for effect in found if effect.changed],
            "unchanged": [effect.name for effect in found if not effect.changed],
        }

    return api


def _key(kind: str, namespace: str, name: str) -> str:
    """The mesh-config key; a name no key can hold is in no config (so: not found)."""
    try:
        return config_key(kind, namespace, name)
    except ValueError:
        return ""
