"""Citadel's self-signed root in a Kubernetes Secret, as Istio keeps it.

Istio's CA stores its generated root in the Secret `istio-ca-secret` in its own namespace
(keys `ca-cert.pem`, `ca-key.pem`, type `istio.io/ca-root`): made on first start, read
back on every later one, so a restart or a second replica signs under the same root.
The Secret's shape (`secret_body`, `bundle_from_secret`) is pure; only
`KubeSecretCaStore` talks to the API server.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any

from libs.kube import AlreadyExists, KubeClient, KubeError, ResourceRef
from libs.pki import InvalidPem, KeyType, cert_pem, key_pem, load_certs, load_private_key
from services.citadel.ca.bundle import CaBundle, assemble
from services.citadel.ca.root import self_signed_root
from services.citadel.ca.store import CA_CERT, CA_KEY
from services.citadel.errors import CaLoadError

SECRETS = ResourceRef("", "v1", "secrets")
CA_SECRET_NAME = "istio-ca-secret"
# Istio's type for this Secret; it also keeps `kubectl get secrets` readable.
CA_SECRET_TYPE = "istio.io/ca-root"


def secret_body(bundle: CaBundle, name: str, namespace: str) -> dict[str, Any]:
    """The Secret holding a self-signed root: certificate and key, base64 as the API wants."""
    data = {CA_CERT: cert_pem(bundle.signing_cert).encode(), CA_KEY: key_pem(bundle.signing_key)}
    return {"apiVersion": "v1", "kind": "Secret", "type": CA_SECRET_TYPE,
            "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "mizzen"}},
            "data": {key: base64.b64encode(value).decode() for key, value in data.items()}}


def bundle_from_secret(secret: dict[str, Any], now: dt.datetime) -> CaBundle:
    """The root a Secret holds, checked; CaLoadError says what is wrong with it."""
    metadata = secret.get("metadata") or {}
    source = f"secret {metadata.get('namespace', '')}/{metadata.get('name', '')}"
    data = secret.get("data") or {}
    missing = [key for key in (CA_CERT, CA_KEY) if not data.get(key)]
    if missing:
        # Never overwrite it: the key may be what every workload in the mesh trusts.
        raise CaLoadError(f"{source} exists but has no {' or '.join(missing)}; repair it, or delete it "
                          "to make a new root (workloads must then fetch the new trust bundle)")
    try:
        cert_bytes = base64.b64decode(data[CA_CERT], validate=True)
        key_bytes = base64.b64decode(data[CA_KEY], validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise CaLoadError(f"{source}: {CA_CERT} or {CA_KEY} is not base64") from exc
    try:
        certs = load_certs(cert_bytes, what=f"{source} {CA_CERT}")
        key = load_private_key(key_bytes, what=f"{source} {CA_KEY}")
    except InvalidPem as exc:
        raise CaLoadError(str(exc)) from exc
    # A self-signed root: the signing certificate is the one root it chains to.
    return assemble(certs[0], key, certs[1:], certs[:1], source=source, now=now)


class KubeSecretCaStore:
    def __init__(self, kube: KubeClient, namespace: str, name: str = CA_SECRET_NAME) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.description = f"self-signed root in secret {namespace}/{name}"

    async def load(self, now: dt.datetime) -> CaBundle | None:
        try:
            secret = await self.kube.get(SECRETS, self.name, namespace=self.namespace)
        except KubeError as exc:
            raise CaLoadError(f"cannot read secret {self.namespace}/{self.name}: {exc}") from exc
        return None if secret is None else bundle_from_secret(secret, now)

    async def create(self, key_type: KeyType, trust_domain: str, now: dt.datetime) -> CaBundle:
        existing = await self.load(now)
        if existing is not None:
            return existing
        bundle = self_signed_root(key_type, trust_domain, now=now)
        try:
            await self.kube.create(SECRETS, secret_body(bundle, self.name, self.namespace), namespace=self.namespace)
        except AlreadyExists:
            # Another replica started at the same moment and won; its root is the mesh's.
            raced = await self.load(now)
            if raced is None:
                raise CaLoadError(f"secret {self.namespace}/{self.name} was created and deleted "
                                  "while citadel started; start again") from None
            return raced
        except KubeError as exc:
            raise CaLoadError(f"cannot create secret {self.namespace}/{self.name}: {exc}") from exc
        return bundle
