"""Citadel's self-signed root in a Kubernetes Secret, as Istio keeps it.

Istio's CA stores its generated root in the Secret `istio-ca-secret` in its own namespace
(keys `ca-cert.pem`, `ca-key.pem`, type `istio.io/ca-root`): made on first start, read
back on every later one, so a restart or a second replica signs under the same root.
The Secret's shape (`secret_body`, `bundle_from_secret`) is pure; only
`KubeSecretCaStore` talks to the API server.  A root rotation keeps its state in the same
Secret (`roots.py`), each step one write guarded by the Secret's resourceVersion.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any

from libs.kube import JSON_PATCH, AlreadyExists, KubeApiError, KubeClient, KubeError, ResourceRef
from libs.pki import KeyType, cert_pem, key_pem
from services.citadel.ca.bundle import CaBundle
from services.citadel.ca.root import DEFAULT_ROOT_TTL, self_signed_root
from services.citadel.ca.roots import RootSet, roots_from_secret_data, roots_to_secret_data, stable
from services.citadel.ca.store import CA_CERT, CA_KEY, same_roots
from services.citadel.errors import CaLoadError, RotationError

SECRETS = ResourceRef("", "v1", "secrets")
CA_SECRET_NAME = "istio-ca-secret"
# Istio's type for this Secret; it also keeps `kubectl get secrets` readable.
CA_SECRET_TYPE = "istio.io/ca-root"


def secret_body(bundle: CaBundle, name: str, namespace: str) -> dict[str, Any]:
    """The Secret holding a self-signed root: certificate and key, base64 as the API wants."""
    data = {CA_CERT: cert_pem(bundle.signing_cert).encode(), CA_KEY: key_pem(bundle.signing_key)}
    return {"apiVersion": "v1", "kind": "Secret", "type": CA_SECRET_TYPE,
            "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "mizzen"}},
            "data": _encode(data)}


def _encode(data: dict[str, bytes]) -> dict[str, str]:
    return {key: base64.b64encode(value).decode() for key, value in data.items()}


def roots_from_secret(secret: dict[str, Any], now: dt.datetime) -> RootSet:
    """The roots a Secret holds, checked; CaLoadError says what is wrong with it."""
    metadata = secret.get("metadata") or {}
    source = f"secret {metadata.get('namespace', '')}/{metadata.get('name', '')}"
    data = secret.get("data") or {}
    missing = [key for key in (CA_CERT, CA_KEY) if not data.get(key)]
    if missing:
        # Never overwrite it: the key may be what every workload in the mesh trusts.
        raise CaLoadError(f"{source} exists but has no {' or '.join(missing)}; repair it, or delete it "
                          "to make a new root (workloads must then fetch the new trust bundle)")
    decoded: dict[str, bytes] = {}
    for key, value in data.items():
        try:
            decoded[key] = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise CaLoadError(f"{source}: {key} is not base64") from exc
    return roots_from_secret_data(decoded, source=source, now=now)


def bundle_from_secret(secret: dict[str, Any], now: dt.datetime) -> CaBundle:
    """The root a Secret holds, checked; CaLoadError says what is wrong with it."""
    return roots_from_secret(secret, now).ca_bundle()


class KubeSecretCaStore:
    def __init__(self, kube: KubeClient, namespace: str, name: str = CA_SECRET_NAME) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.description = f"self-signed root in secret {namespace}/{name}"

    async def _get(self) -> dict[str, Any] | None:
        try:
            return await self.kube.get(SECRETS, self.name, namespace=self.namespace)
        except KubeError as exc:
            raise CaLoadError(f"cannot read secret {self.namespace}/{self.name}: {exc}") from exc

    async def load(self, now: dt.datetime) -> CaBundle | None:
        secret = await self._get()
        return None if secret is None else bundle_from_secret(secret, now)

    async def create(self, key_type: KeyType, trust_domain: str, now: dt.datetime) -> CaBundle:
        return (await self.create_roots(key_type, trust_domain, now)).ca_bundle()

    async def create_roots(self, key_type: KeyType, trust_domain: str, now: dt.datetime,
                           ttl: dt.timedelta = DEFAULT_ROOT_TTL) -> RootSet:
        existing = await self._get()
        if existing is not None:
            return roots_from_secret(existing, now)
        roots = stable(self_signed_root(key_type, trust_domain, now=now, ttl=ttl), now)
        try:
            await self.kube.create(SECRETS, secret_body(roots.signing, self.name, self.namespace),
                                   namespace=self.namespace)
        except AlreadyExists:
            # Another replica started at the same moment and won; its root is the mesh's.
            raced = await self._get()
            if raced is None:
                raise CaLoadError(f"secret {self.namespace}/{self.name} was created and deleted "
                                  "while citadel started; start again") from None
            return roots_from_secret(raced, now)
        except KubeError as exc:
            raise CaLoadError(f"cannot create secret {self.namespace}/{self.name}: {exc}") from exc
        return roots

    async def save_roots(self, roots: RootSet, expected: RootSet, now: dt.datetime) -> None:
        """One JSON patch replacing the data, applied only to the version `expected` was read from."""
        where = f"secret {self.namespace}/{self.name}"
        secret = await self._get()
        if secret is None or not same_roots(roots_from_secret(secret, now), expected):
            raise RotationError(f"{where} changed under this citadel (another replica?); not saving the rotation step")
        version = (secret.get("metadata") or {}).get("resourceVersion", "")
        patch = [{"op": "test", "path": "/metadata/resourceVersion", "value": version},
                 {"op": "add", "path": "/data", "value": _encode(roots_to_secret_data(roots))}]
        try:
            await self.kube.patch(SECRETS, self.name, patch, namespace=self.namespace, content_type=JSON_PATCH)
        except KubeApiError as exc:
            if exc.status in (409, 422):
                raise RotationError(f"{where} changed while saving the rotation step; not saved") from exc
            raise RotationError(f"cannot write {where}: {exc}") from exc
        except KubeError as exc:
            raise RotationError(f"cannot write {where}: {exc}") from exc
