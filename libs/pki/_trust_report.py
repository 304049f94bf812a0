"""What a holder of a citadel certificate tells citadel while citadel rotates its root.

A holder (an agent, for its Envoy) writes one report into the KV bucket `mesh-trust-status`
and rewrites it whenever what its Envoy applied changes, and every few seconds so that the
entry does not expire.  Citadel reads them all to decide when a rotation may move on: every
holder trusts the new root (it may start signing with it), and no holder presents a
certificate from the old root any more (it may drop it).  Pure: JSON in, JSON out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_KEY_UNSAFE = re.compile(r"[^-/_=.a-zA-Z0-9]")


@dataclass(frozen=True)
class TrustReport:
    holder: str  # the proxy's node id
    trust_domain: str
    # SHA-256 fingerprints (hex) of the roots the holder's Envoy applied (ACKed) as ROOTCA.
    trusted: tuple[str, ...]
    # Fingerprints of the roots the certificates it may present chain to (ACKed as `default`);
    # empty while it presents none.
    cert_roots: tuple[str, ...]
    reported_at: float

    def to_json(self) -> bytes:
        return json.dumps({"holder": self.holder, "trust_domain": self.trust_domain, "trusted": list(self.trusted),
                           "cert_roots": list(self.cert_roots), "reported_at": self.reported_at},
                          sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> TrustReport:
        """A report, or ValueError saying what is wrong with it."""
        try:
            body: Any = json.loads(data)
        except ValueError as exc:
            raise ValueError(f"a trust report is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise ValueError("a trust report is not a JSON object")
        try:
            trusted, cert_roots = body["trusted"], body["cert_roots"]
            if not isinstance(trusted, list) or not isinstance(cert_roots, list):
                raise ValueError("trusted and cert_roots must be lists")
            return cls(holder=str(body["holder"]), trust_domain=str(body["trust_domain"]),
                       trusted=tuple(str(f) for f in trusted), cert_roots=tuple(str(f) for f in cert_roots),
                       reported_at=float(body["reported_at"]))
        except KeyError as exc:
            raise ValueError(f"a trust report lacks {exc.args[0]!r}") from exc
        except TypeError as exc:
            raise ValueError(f"a trust report has a field of the wrong type: {exc}") from exc


def holder_key(node_id: str) -> str:
    """The report's KV key: the node id with `~` as `/` (KV keys allow [-/_=.a-zA-Z0-9]; any
    other character becomes `_`, and empty dot-separated tokens are filled)."""
    key = _KEY_UNSAFE.sub("_", node_id.replace("~", "/"))
    return ".".join(token or "_" for token in key.split("."))
