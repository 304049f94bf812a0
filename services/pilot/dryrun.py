"""What applying config would change in each proxy's Envoy config, worked out without
applying it (`/debug/dryrun`, `mizzenctl apply --dry-run`).  Pure: no I/O, nothing shared
with the live push.

1. `proposed_push`: pilot's current push with the proposed resources laid over its config
   (each replaces the resource with its kind, namespace and name, as galley's apply would),
   rebuilt with the same registry contents and the mesh config the result makes.  A new
   push: the live one, the snapshot cache, its memo and every version stay as they are.
2. `Holding.of`: what a proxy holds, as its stream recorded what pilot sent it, copied on
   the event loop so the translation can run on another thread.
3. `effects`: the proposed push translated once per proxy class (a fresh memo), and for
   each proxy, resource by resource, a unified diff of canonical JSON between what it holds
   and what pilot would send it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from libs.config import Resource
from libs.envoy import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, PUSH_ORDER, ROUTE_TYPE, short_type
from services.pilot.envoy_json import canonical
from services.pilot.errors import InconsistentConfig
from services.pilot.model.config import ConfigSnapshot
from services.pilot.model.mesh import MeshConfig
from services.pilot.model.proxy import Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.networking.generator import generate
from services.pilot.networking.memo import TranslationMemo
from services.pilot.xds.snapshot import EncodedResource, Snapshot
from services.pilot.xds.stream_state import AnyConnection, Watch

__all__ = ["TYPE_WORDS", "Change", "Holding", "MeshOf", "ProxyEffect", "diff_resources", "effects",
           "proposed_push", "would_send"]

log = structlog.get_logger(__name__)

# How `mizzenctl proxy-config` names the types, in push order.
TYPE_WORDS = {CLUSTER_TYPE: "clusters", ENDPOINT_TYPE: "endpoints", LISTENER_TYPE: "listeners", ROUTE_TYPE: "routes"}

# The mesh config a config snapshot makes (its `istio` ConfigMap over pilot's flags).
MeshOf = Callable[[ConfigSnapshot], MeshConfig]

Resources = Mapping[str, EncodedResource]


def proposed_push(push: PushContext, resources: Iterable[Resource], mesh_of: MeshOf,
                  deleted: Iterable[str] = ()) -> PushContext:
    """The push as it would be with `resources` applied and the resources of the
    mesh-config keys `deleted` deleted."""
    config = push.config.without(deleted).overlaid(resources)
    return push.with_config(config, mesh_of(config))


def _unsettled(watch: Watch) -> str | None:
    """Why what pilot recorded as sent may not be what the proxy runs, or None."""
    kind = short_type(watch.type_url)
    nack = watch.last_nack
    if nack is not None and nack.version == watch.version_sent and watch.version_acked != watch.version_sent:
        return f"{kind} rejected version {nack.version} ({nack.message}): Envoy kept its previous {kind}"
    if watch.awaiting_ack:
        return f"{kind} version {watch.version_sent} is sent but not ACKed yet"
    return None


@dataclass(frozen=True)
class Holding:
    """What one proxy holds, as pilot sent it (the state `/debug/config_dump` shows)."""

    proxy: Proxy
    # `<pod>.<namespace>`, Istio's proxy ID.
    name: str
    resources: dict[str, Resources]
    # What it subscribed to by name, per type (None: every resource of the type).
    subscriptions: dict[str, frozenset[str] | None]
    # The push version its stream last processed.
    version: str
    unsettled: tuple[str, ...] = ()

    @classmethod
    def of(cls, connection: AnyConnection, name: str) -> Holding:
        """Copied where it may change (a stream updates the dicts it owns in place); a
        snapshot's own dicts are never changed and are kept as they are."""
        resources: dict[str, Resources] = {}
        subscriptions: dict[str, frozenset[str] | None] = {}
        unsettled: list[str] = []
        for type_url in PUSH_ORDER:
            watch = connection.watches[type_url]
            resources[type_url] = dict(watch.sent) if watch.sent_owned else watch.sent
            if watch.subscribed:
                subscriptions[type_url] = watch.names
                if (reason := _unsettled(watch)) is not None:
                    unsettled.append(reason)
        return cls(connection.proxy, name, resources, subscriptions, connection.snapshot_version, tuple(unsettled))


@dataclass(frozen=True)
class Change:
    type: str
    name: str
    # "added", "removed" or "changed".
    change: str
    diff: str

    def as_dict(self) -> dict[str, str]:
        return {"type": self.type, "name": self.name, "change": self.change, "diff": self.diff}


@dataclass(frozen=True)
class ProxyEffect:
    proxy: str
    name: str
    changes: tuple[Change, ...] = ()
    # Why pilot would not send it the proposed config at all (the proxy would keep what it holds).
    error: str | None = None
    # Why what it holds may differ from pilot's current config regardless of this change.
    unsettled: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.changes) or self.error is not None

    def as_dict(self) -> dict[str, Any]:
        by_type: dict[str, list[dict[str, str]]] = {}
        for change in self.changes:
            by_type.setdefault(change.type, []).append(change.as_dict())
        return {"proxy": self.proxy, "name": self.name, "changes": by_type, "error": self.error,
                "unsettled": list(self.unsettled)}


def would_send(snapshot: Snapshot, holding: Holding) -> dict[str, Resources]:
    """Per type, the resources the proxy would hold once it has taken `snapshot`: Envoy's
    wildcard CDS and LDS get all, and its EDS and RDS follow them (the load assignments of
    the EDS clusters, the route configurations the listeners name); a proxyless gRPC client
    gets what it subscribed to by name."""
    out: dict[str, Resources] = {}
    for type_url in PUSH_ORDER:
        available = snapshot.resources.get(type_url, {})
        names: frozenset[str] | None
        if holding.proxy.proxyless:
            if type_url not in holding.subscriptions:
                out[type_url] = {}
                continue
            names = holding.subscriptions[type_url]
        else:
            names = {ENDPOINT_TYPE: snapshot.eds_clusters, ROUTE_TYPE: snapshot.route_names}.get(type_url)
        out[type_url] = available if names is None else {n: available[n] for n in names if n in available}
    return out


def diff_resources(proxy_name: str, type_url: str, now: Resources, after: Resources,
                   action: str = "apply") -> list[Change]:
    """One `Change` per resource that differs, with a unified diff of its canonical JSON
    (`--- <proxy> <type> <name> (now)`, `+++ ... (after <action>)`); an added resource is
    diffed against nothing, a removed one to nothing."""
    word = TYPE_WORDS[type_url]
    changes: list[Change] = []
    for name in sorted(now.keys() | after.keys()):
        before, later = now.get(name), after.get(name)
        if before is not None and later is not None and (before is later or before.digest == later.digest):
            continue
        old = canonical(before) if before is not None else ""
        new = canonical(later) if later is not None else ""
        if old == new:
            # Encoded apart (an Any's map order), equal as config.
            continue
        change = "added" if before is None else "removed" if later is None else "changed"
        lines = difflib.unified_diff(old.splitlines(), new.splitlines(), f"{proxy_name} {word} {name} (now)",
                                     f"{proxy_name} {word} {name} (after {action})", lineterm="")
        changes.append(Change(word, name, change, "\n".join(lines)))
    return changes


def _translate(proxy: Proxy, push: PushContext, memo: TranslationMemo) -> Snapshot | str:
    """The proxy's snapshot of `push`, or why pilot would not serve one."""
    try:
        return Snapshot.from_config(generate(proxy, push, memo), memo)
    except InconsistentConfig as exc:
        return f"pilot would refuse to serve this config to it ({exc}); it would keep what it holds"
    except Exception as exc:
        log.exception("dry run: generating config failed", proxy=proxy.id)
        return f"generating its config failed ({exc!r}); it would keep what it holds"


def effects(push: PushContext, holdings: Sequence[Holding], *, current_version: str,
            action: str = "apply") -> list[ProxyEffect]:
    """Per proxy, what taking `push` would change.  `current_version`: the live push's,
    to tell a proxy that has not been sent it yet; `action`: what makes `push` (apply or
    delete), as the diffs name it."""
    memo = TranslationMemo()
    snapshots: dict[tuple[Any, ...], Snapshot | str] = {}
    out: list[ProxyEffect] = []
    for holding in holdings:
        key = holding.proxy.class_key
        if key not in snapshots:
            snapshots[key] = _translate(holding.proxy, push, memo)
        snapshot = snapshots[key]
        unsettled = holding.unsettled
        if holding.version != current_version:
            unsettled = (f"its stream has not processed pilot's current version {current_version} yet "
                         f"(it holds {holding.version or 'nothing'})", *unsettled)
        if isinstance(snapshot, str):
            out.append(ProxyEffect(holding.proxy.id, holding.name, error=snapshot, unsettled=unsettled))
            continue
        after = would_send(snapshot, holding)
        changes = [change for type_url in PUSH_ORDER
                   for change in diff_resources(holding.name, type_url, holding.resources[type_url], after[type_url],
                                                action)]
        out.append(ProxyEffect(holding.proxy.id, holding.name, tuple(changes), unsettled=unsettled))
    return out
