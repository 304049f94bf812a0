"""The internal form of one config resource, as it travels in the `mesh-config` bucket."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, eq=True)
class Resource:
    """A validated resource: Istio's apiVersion and kind, identity, and normalised spec.

    `spec` uses Istio's JSON field names and canonical durations (see `libs.config.schema`).
    """

    api_version: str
    kind: str
    namespace: str
    name: str
    spec: dict[str, Any]
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    __hash__ = None  # type: ignore[assignment]  # spec is a dict; compare, never hash

    @property
    def group(self) -> str:
        return self.api_version.split("/", 1)[0] if "/" in self.api_version else ""

    @property
    def key(self) -> str:
        # Imported here: libs.bus brings in the NATS client (~0.1s), which offline users of
        # the config model (mizzenctl validate) never need.
        from libs.bus import config_key

        return config_key(self.kind, self.namespace, self.name)

    @property
    def ref(self) -> str:
        """How errors and logs name it: `VirtualService default/reviews`."""
        return f"{self.kind} {self.namespace}/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if self.labels:
            metadata["labels"] = self.labels
        if self.annotations:
            metadata["annotations"] = self.annotations
        return {"apiVersion": self.api_version, "kind": self.kind, "metadata": metadata, "spec": self.spec}

    def to_json(self) -> bytes:
        """Canonical JSON, computed once: galley compares it on every publish."""
        cached: bytes | None = self.__dict__.get("_json")
        if cached is None:
            cached = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()
            object.__setattr__(self, "_json", cached)
        return cached

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> Resource:
        metadata = body["metadata"]
        return cls(
            api_version=body["apiVersion"],
            kind=body["kind"],
            namespace=metadata["namespace"],
            name=metadata["name"],
            spec=body.get("spec") or {},
            labels=dict(metadata.get("labels") or {}),
            annotations=dict(metadata.get("annotations") or {}),
        )

    @classmethod
    def from_json(cls, data: bytes) -> Resource:
        return cls.from_dict(json.loads(data))
