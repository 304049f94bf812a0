"""Gateway credentials (Istio's `credentialName`) behind one Protocol, and the pure rules
for reading and checking them.

A credential holds what a Kubernetes TLS secret holds: a certificate chain, its private key
and optionally a CA bundle (to verify clients with).  Istio accepts two sets of key names
(pilot/pkg/credentials/kube/secrets.go), the generic ones first:

    generic secret:         cert     key      cacert
    kubernetes.io/tls:      tls.crt  tls.key  ca.crt

The CA of `<name>-cacert` comes from a secret of that name, else from `<name>`'s own CA key
(Istio's GetCaCert).  Two stores implement `CredentialStore`: a directory of files
(`credentials_files`) and the Secrets of a Kubernetes namespace (`credentials_kube`).

Error messages name keys and files, never their contents: a private key is never logged.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import NamedTuple, Protocol

from cryptography import x509

from libs.pki import InvalidPem, load_certs, load_private_key
from services.agent.errors import CredentialNotFound, InvalidCredential

CERT_KEYS = (("cert", "key"), ("tls.crt", "tls.key"))
CA_KEYS = ("cacert", "ca.crt")
ALL_KEYS = ("cert", "key", "cacert", "tls.crt", "tls.key", "ca.crt")
CA_SUFFIX = "-cacert"
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.DOTALL)

# (namespace, name) of a changed secret; name "" when any secret of the namespace may have changed.
ChangeListener = Callable[[str, str], None]


class Credential(NamedTuple):
    cert_chain_pem: bytes
    private_key_pem: bytes
    ca_pem: bytes | None


class CredentialStore(Protocol):
    """Where `kubernetes://` credentials come from.  `get` and `get_ca` raise
    CredentialNotFound (absent, unreadable, not loaded yet) or InvalidCredential (present
    but without the expected keys); `run` watches the source and calls the listeners."""

    @property
    def source(self) -> str:
        """Where the credentials come from, for logs."""
        ...

    def get(self, namespace: str, name: str) -> Credential: ...

    def get_ca(self, namespace: str, name: str) -> bytes: ...

    def subscribe(self, listener: ChangeListener) -> None: ...

    async def run(self) -> None: ...


SecretData = Mapping[str, bytes]


def _found(data: SecretData) -> str:
    keys = sorted(data)
    return ", ".join(keys[:3]) + (f", and {len(keys) - 3} more" if len(keys) > 3 else "") or "no keys"


def credential_from(data: SecretData, what: str) -> Credential:
    """Istio's extractKeyAndCert, plus the CA when the secret has one."""
    for cert_key, key_key in CERT_KEYS:
        if data.get(cert_key) and data.get(key_key):
            ca = next((data[k] for k in CA_KEYS if data.get(k)), None)
            return Credential(data[cert_key], data[key_key], ca)
    for cert_key, key_key in CERT_KEYS:
        if cert_key in data and key_key in data:
            raise InvalidCredential(what, f"found keys {cert_key!r} and {key_key!r}, but they were empty")
    raise InvalidCredential(what, "found the secret, but without the expected keys (cert and key) or "
                                  f"(tls.crt and tls.key); found: {_found(data)}")


def ca_from(data: SecretData, what: str) -> bytes:
    """Istio's extractRoot."""
    for key in CA_KEYS:
        if data.get(key):
            return data[key]
    for key in CA_KEYS:
        if key in data:
            raise InvalidCredential(what, f"found key {key!r}, but it was empty")
    raise InvalidCredential(what, f"found the secret, but without the expected keys cacert or ca.crt; "
                                  f"found: {_found(data)}")


class SecretStore(ABC):
    """What both credential stores share: lookups by Istio's rules over `data`, and the
    listeners told which secret changed.  A store supplies `source`, `data` and `run`."""

    def __init__(self) -> None:
        self._listeners: list[ChangeListener] = []

    @property
    @abstractmethod
    def source(self) -> str:
        """Where the credentials come from, for logs and errors."""

    @abstractmethod
    def data(self, namespace: str, name: str) -> SecretData | None:
        """The secret's keys; None when the store has no such secret."""

    def subscribe(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)

    def _notify(self, namespace: str, name: str) -> None:
        for listener in self._listeners:
            listener(namespace, name)

    def get(self, namespace: str, name: str) -> Credential:
        data = self.data(namespace, name)
        if data is None:
            raise CredentialNotFound(f"secret {namespace}/{name}", f"not found in {self.source}")
        return credential_from(data, f"secret {namespace}/{name}")

    def get_ca(self, namespace: str, name: str) -> bytes:
        """The CA of `name` (`<base>-cacert`): that secret's, else the base secret's."""
        data = self.data(namespace, name)
        if data is not None:
            return ca_from(data, f"secret {namespace}/{name}")
        base = name.removesuffix(CA_SUFFIX)
        if base == name:
            raise CredentialNotFound(f"secret {namespace}/{name}", f"not found in {self.source}")
        data = self.data(namespace, base)
        if data is None:
            raise CredentialNotFound(f"secret {namespace}/{name}", f"neither {name} nor {base} found in {self.source}")
        return ca_from(data, f"secret {namespace}/{base}")


# -- checks before anything reaches Envoy (which would NACK it) -------------------------------

def check_credential(credential: Credential, what: str) -> x509.Certificate:
    """The leaf, once the chain and the key parse and belong together."""
    try:
        chain = load_certs(credential.cert_chain_pem, what="the certificate chain")
        key = load_private_key(credential.private_key_pem, what="the private key")
    except InvalidPem as exc:
        raise InvalidCredential(what, str(exc)) from None
    if chain[0].public_key() != key.public_key():
        raise InvalidCredential(what, "the private key does not belong to the certificate (a half-written "
                                      "rotation, or mismatched files)")
    # The CA is checked where it is served (`<name>-cacert`), not here: a bad ca.crt must
    # not keep the certificate from being served.
    return chain[0]


def check_ca(pem: bytes, what: str) -> int:
    """How many certificates the bundle holds.  Lenient where Envoy is: system bundles carry
    roots `cryptography` frowns on (negative serials) that BoringSSL loads, so only a bundle
    with a block that is not base64, or without one certificate that parses, is refused."""
    blocks = _PEM_CERT.findall(pem)
    if not blocks:
        raise InvalidCredential(what, "the CA bundle holds no PEM certificate")
    parsed = 0
    for body in blocks:
        try:
            der = base64.b64decode(b"".join(body.split()), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidCredential(what, "the CA bundle holds a certificate block that is not base64") from None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                x509.load_der_x509_certificate(der)
            except ValueError:
                continue
        parsed += 1
    if not parsed:
        raise InvalidCredential(what, "no certificate of the CA bundle parses")
    return len(blocks)


def validity_problem(leaf: x509.Certificate, now: dt.datetime) -> str | None:
    """Istio serves an expired certificate but says so; so does the agent."""
    if now > leaf.not_valid_after_utc:
        return f"expired at {leaf.not_valid_after_utc.isoformat()}"
    if now < leaf.not_valid_before_utc:
        return f"not valid before {leaf.not_valid_before_utc.isoformat()}"
    return None
