"""A workload's registration in the local mesh's `mesh-workloads` bucket.

Each agent writes its workload under `<namespace>.<name>` and rewrites it every third
of the bucket's TTL (`TTL_S` by default); the bucket expires entries not rewritten
within the TTL, leaving a delete marker, so a workload whose agent died leaves pilot's
endpoints within one TTL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

TTL_S = 15.0


@dataclass(frozen=True)
class WorkloadRegistration:
    name: str
    namespace: str
    address: str
    labels: dict[str, str] = field(default_factory=dict)
    service_account: str = "default"
    # Service port name -> the workload port serving it (as WorkloadEntry.ports).
    ports: dict[str, int] = field(default_factory=dict)
    locality: str = ""
    # A sidecar fronts the workload, so peers may use mTLS.
    sidecar: bool = True

    @property
    def key(self) -> str:
        return f"{self.namespace}.{self.name}"

    def to_json(self) -> bytes:
        return json.dumps({
            "name": self.name, "namespace": self.namespace, "address": self.address, "labels": self.labels,
            "serviceAccount": self.service_account, "ports": self.ports, "locality": self.locality,
            "sidecar": self.sidecar,
        }, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> WorkloadRegistration:
        body: dict[str, Any] = json.loads(data)
        return cls(
            name=str(body["name"]), namespace=str(body["namespace"]), address=str(body["address"]),
            labels={str(k): str(v) for k, v in (body.get("labels") or {}).items()},
            service_account=str(body.get("serviceAccount", "default")),
            ports={str(k): int(v) for k, v in (body.get("ports") or {}).items()},
            locality=str(body.get("locality", "")), sidecar=bool(body.get("sidecar", True)),
        )
