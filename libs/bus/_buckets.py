"""The KV buckets Mizzen's services share, and their key schemes.

`mesh-config` — validated configuration, written only by galley.
    key:   `<Kind>.<namespace>.<name>`, e.g. `VirtualService.default.reviews`.
           Kinds and namespaces never contain dots (Kubernetes forbids them in namespaces),
           so the name is everything after the second dot and may itself hold dots.
    value: JSON `{"apiVersion", "kind", "metadata": {"name", "namespace", "labels",
           "annotations", ...}, "spec": {...}}` with the spec in Istio's JSON field names,
           normalised by galley (see `libs.config`).
    The KV revision of an entry is the version pilot reports to Envoy for config built
    from it, so every pilot replica computes the same version for the same config.

`mesh-workloads` — the local mesh's workload registry, written by each agent.
    key:   `<namespace>.<name>` of the workload; value: JSON (see `libs.config.workloads`).
    Entries expire when their agent stops refreshing them.

`mesh-trust` — trust bundles, written only by citadel, watched by every agent.
    key:   the SPIFFE trust domain, e.g. `cluster.local`.
    value: PEM, every root certificate the mesh trusts for that domain, concatenated
           (more than one while a root is being rotated).  Agents serve it to Envoy as
           the `ROOTCA` secret; citadel rewrites it only when its roots change.
           Order matters: the root citadel signs with comes first, the others follow
           (a root being introduced, or one being retired).  A proxy whose certificate
           hangs off another root than the first renews it.

`mesh-trust-status` — what each holder of a citadel certificate has applied, written by
    the holders (agents), read by citadel while it rotates its root.
    key:   the holder's node id with `~` as `/` (`sidecar/10.0.0.1/web-1.default/default.svc.cluster.local`).
    value: JSON (see `libs.pki.TrustReport`): the roots its Envoy has ACKed as `ROOTCA`, and
           the roots its served certificates chain to.
    Entries expire (`TRUST_STATUS_TTL_S`) when their holder stops refreshing them, so a
    holder that went away never holds a rotation up.
"""

from __future__ import annotations

import re
from typing import NamedTuple

MESH_CONFIG = "mesh-config"
MESH_WORKLOADS = "mesh-workloads"
MESH_TRUST = "mesh-trust"
MESH_TRUST_STATUS = "mesh-trust-status"
# Seconds a mesh-trust-status entry lives unless its holder rewrites it.
TRUST_STATUS_TTL_S = 15.0

# NATS KV keys allow [-/_=.a-zA-Z0-9]; Kubernetes names are a subset of that.
_KEY_TOKEN = re.compile(r"^[-/_=.a-zA-Z0-9]+$")


class ConfigKey(NamedTuple):
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}.{self.namespace}.{self.name}"


def config_key(kind: str, namespace: str, name: str) -> str:
    for part, value in (("kind", kind), ("namespace", namespace)):
        if not value or "." in value or not _KEY_TOKEN.match(value):
            raise ValueError(f"{part} {value!r} cannot be used in a mesh-config key")
    if not name or not _KEY_TOKEN.match(name) or name.startswith(".") or name.endswith("."):
        raise ValueError(f"name {name!r} cannot be used in a mesh-config key")
    return f"{kind}.{namespace}.{name}"


def parse_config_key(key: str) -> ConfigKey:
    parts = key.split(".", 2)
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"{key!r} is not a mesh-config key (<Kind>.<namespace>.<name>)")
    return ConfigKey(*parts)
