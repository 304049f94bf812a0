"""Where the CA's key material lives.

`CaStore` is the seam: a directory (`FileCaStore`, citadel's own self-signed root),
Istio's plugged-in `cacerts` directory (`CacertsStore`, read-only), or a Kubernetes Secret
(`KubeSecretCaStore` in `store_kube.py`).  The seam is async because the Secret store talks
to the API server; the file stores do their (brief, but flock-waiting) I/O in a worker
thread so a second citadel holding the lock never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Protocol

from libs.pki import InvalidPem, KeyType, key_pem, load_certs, load_private_key
from services.citadel.ca.bundle import CaBundle, assemble
from services.citadel.ca.root import self_signed_root
from services.citadel.errors import CaLoadError
from services.citadel.state_dir import StateDir

ROOT_CERT = "root-cert.pem"
ROOT_KEY = "root-key.pem"
# Istio's plugged-in CA layout (the `cacerts` secret).
CA_CERT, CA_KEY, CERT_CHAIN = "ca-cert.pem", "ca-key.pem", "cert-chain.pem"


class CaStore(Protocol):
    description: str

    async def load(self, now: dt.datetime) -> CaBundle | None:
        """The stored CA, checked; None if nothing is stored yet."""
        ...

    async def create(self, key_type: KeyType, trust_domain: str, now: dt.datetime) -> CaBundle:
        """Load the stored CA, or make and store a self-signed root if there is none."""
        ...


def _parse(source: Path, data: bytes, what: str, now: dt.datetime, *, key: bytes,
           chain: bytes | None = None, roots: bytes | None = None) -> CaBundle:
    try:
        certs = load_certs(data, what=str(source))
        signing_key = load_private_key(key, what=what)
        chain_certs = load_certs(chain, what=f"{source.parent / CERT_CHAIN}") if chain else []
        root_certs = load_certs(roots, what=f"{source.parent / ROOT_CERT}") if roots else certs[:1]
    except InvalidPem as exc:
        raise CaLoadError(str(exc)) from exc
    return assemble(certs[0], signing_key, [*certs[1:], *chain_certs], root_certs, source=str(source.parent),
                    now=now)


class FileCaStore:
    """Citadel's own root in its state dir: root-cert.pem and root-key.pem (0600)."""

    def __init__(self, state_dir: Path) -> None:
        self.state = StateDir(state_dir)
        self.description = f"self-signed root in {state_dir}"

    async def load(self, now: dt.datetime) -> CaBundle | None:
        return await asyncio.to_thread(self._load, now)

    async def create(self, key_type: KeyType, trust_domain: str, now: dt.datetime) -> CaBundle:
        return await asyncio.to_thread(self._create, key_type, trust_domain, now)

    def _load(self, now: dt.datetime) -> CaBundle | None:
        cert, key = self.state.read(ROOT_CERT), self.state.read(ROOT_KEY)
        if cert is None and key is None:
            return None
        if cert is None or key is None:
            missing = ROOT_CERT if cert is None else ROOT_KEY
            raise CaLoadError(f"{self.state.path}: {missing} is missing but its pair exists; "
                              "restore it, or remove both to make a new root")
        return _parse(self.state.file(ROOT_CERT), cert, str(self.state.file(ROOT_KEY)), now, key=key)

    def _create(self, key_type: KeyType, trust_domain: str, now: dt.datetime) -> CaBundle:
        with self.state.locked():
            existing = self._load(now)
            if existing is not None:
                return existing
            bundle = self_signed_root(key_type, trust_domain, now=now)
            # The key first: a root cert without its key is useless, the reverse is recoverable.
            self.state.write(ROOT_KEY, key_pem(bundle.signing_key), private=True)
            self.state.write(ROOT_CERT, bundle.trust_bundle_pem().encode(), private=False)
            return bundle


class CacertsStore:
    """A plugged-in CA in Istio's layout: ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem.

    Citadel signs as the intermediate in ca-cert.pem; every root in root-cert.pem is trusted.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.description = f"plugged-in CA (cacerts) in {directory}"

    async def load(self, now: dt.datetime) -> CaBundle:
        return await asyncio.to_thread(self._load, now)

    async def create(self, key_type: KeyType, trust_domain: str, now: dt.datetime) -> CaBundle:
        # A plugged-in CA is the operator's: never replace it with a generated one.
        return await self.load(now)

    def _load(self, now: dt.datetime) -> CaBundle:
        files: dict[str, bytes] = {}
        for name in (CA_CERT, CA_KEY, ROOT_CERT, CERT_CHAIN):
            try:
                files[name] = (self.directory / name).read_bytes()
            except FileNotFoundError:
                if name != CERT_CHAIN:
                    raise CaLoadError(f"{self.directory}: {name} is missing (a plugged-in CA needs "
                                      f"{CA_CERT}, {CA_KEY}, {ROOT_CERT} and usually {CERT_CHAIN})") from None
            except OSError as exc:
                raise CaLoadError(f"cannot read {self.directory / name}: {exc.strerror}") from exc
        return _parse(self.directory / CA_CERT, files[CA_CERT], str(self.directory / CA_KEY), now,
                      key=files[CA_KEY], chain=files.get(CERT_CHAIN), roots=files[ROOT_CERT])
