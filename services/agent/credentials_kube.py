"""Credentials from the Kubernetes Secrets of the gateway's own namespace, as Istio's
gateways read them: one informer (list, then watch) on `secrets` in that namespace, kept in
memory; the agent needs `list` and `watch` on secrets there, nothing cluster-wide.

Until the first list completes every secret is "not loaded yet", never "absent".
"""

from __future__ import annotations

import base64
import binascii
import contextlib

import structlog

from libs.kube import KubeClient, ResourceRef, Synced, WatchSettings, watch_resources
from services.agent.credentials import SecretData, SecretStore
from services.agent.errors import CredentialNotFound

log = structlog.get_logger(__name__)

SECRETS = ResourceRef("", "v1", "secrets")


def decode_data(secret: dict[str, object]) -> dict[str, bytes]:
    """A Secret's `data` (base64 values), decoded; a key whose value does not decode is left
    out (and named in the log), so the secret reads as missing that key."""
    raw = secret.get("data") or {}
    decoded: dict[str, bytes] = {}
    if not isinstance(raw, dict):
        return decoded
    for key, value in raw.items():
        try:
            decoded[str(key)] = base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            metadata = secret.get("metadata") or {}
            name = metadata.get("name") if isinstance(metadata, dict) else None
            log.warning("secret key is not base64; ignored", secret=name, key=key)
    return decoded


class KubeCredentialStore(SecretStore):
    def __init__(self, client: KubeClient, namespace: str, *, settings: WatchSettings | None = None) -> None:
        super().__init__()
        self.client = client
        self.namespace = namespace
        self.settings = settings
        self.synced = False
        self._secrets: dict[str, dict[str, bytes]] = {}

    @property
    def source(self) -> str:
        return f"Kubernetes secrets of namespace {self.namespace} ({self.client.host})"

    def data(self, namespace: str, name: str) -> SecretData | None:
        if namespace != self.namespace:
            raise CredentialNotFound(f"secret {namespace}/{name}",
                                     f"only the secrets of namespace {self.namespace} are watched")
        if not self.synced:
            raise CredentialNotFound(f"secret {namespace}/{name}",
                                     f"the first list of {self.source} has not completed yet")
        return self._secrets.get(name)

    async def run(self) -> None:
        """Follow the namespace's secrets until cancelled (the informer retries on its own)."""
        listed: set[str] | None = set()  # names of this run's first list, until it completes
        events = watch_resources(self.client, SECRETS, namespace=self.namespace, settings=self.settings)
        async with contextlib.aclosing(events) as stream:
            async for event in stream:
                if isinstance(event, Synced):
                    if listed is not None:
                        # A restarted run: forget what the previous one held that is gone now.
                        for name in set(self._secrets) - listed:
                            del self._secrets[name]
                        listed = None
                        self.synced = True
                        log.info("secrets loaded", namespace=self.namespace, secrets=len(self._secrets))
                        self._notify(self.namespace, "")
                    continue
                if listed is not None:
                    listed.add(event.name)
                if event.type == "DELETED":
                    self._secrets.pop(event.name, None)
                else:
                    self._secrets[event.name] = decode_data(event.object)
                if listed is None:
                    self._notify(self.namespace, event.name)
