"""Where the CA's key material lives.

`CaStore` is the seam: a directory (`FileCaStore`, citadel's own self-signed root),
Istio's plugged-in `cacerts` directory (`CacertsStore`, read-only), or a Kubernetes Secret
(`KubeSecretCaStore` in `store_kube.py`).  The seam is async because the Secret store talks
to the API server; the file stores do their (brief, but flock-waiting) I/O in a worker
thread so a second citadel holding the lock never stalls the event loop.

The stores of citadel's own root are also `RootStore`s: they keep a root rotation's state
(`RootSet`, laid out as `roots.py` says) and save each step only over the state it was
computed from, so two citadels sharing a store never both take a step.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Protocol

from libs.pki import InvalidPem, KeyType, fingerprint, load_certs, load_private_key
from services.citadel.ca.bundle import CaBundle, assemble
from services.citadel.ca.root import DEFAULT_ROOT_TTL, self_signed_root
from services.citadel.ca.roots import (
    FILE_NAMES,
    NEXT_ROOT_KEY,
    ROOT_CERT,
    ROOT_KEY,
    RootSet,
    roots_from_files,
    roots_to_files,
    stable,
)
from services.citadel.errors import CaLoadError, RotationError
from services.citadel.state_dir import StateDir

_PRIVATE = frozenset({ROOT_KEY, NEXT_ROOT_KEY})
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


class RootStore(Protocol):
    """Where citadel's own self-signed root lives, with the state of a rotation."""

    description: str

    async def create_roots(self, key_type: KeyType, trust_domain: str, now: dt.datetime,
                           ttl: dt.timedelta = DEFAULT_ROOT_TTL) -> RootSet:
        """The stored roots, or a new self-signed root stored if there is none."""
        ...

    async def save_roots(self, roots: RootSet, expected: RootSet, now: dt.datetime) -> None:
        """Store `roots` if what is stored is still `expected`; RotationError if not."""
        ...


def same_roots(a: RootSet, b: RootSet) -> bool:
    return (fingerprint(a.root) == fingerprint(b.root) and a.fingerprints() == b.fingerprints()
            and a.phase is b.phase)


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
    """Citadel's own root in its state dir: root-cert.pem (the trust bundle) and root-key.pem
    (0600), and a rotation's files beside them."""

    def __init__(self, state_dir: Path) -> None:
        self.state = StateDir(state_dir)
        self.description = f"self-signed root in {state_dir}"

    async def load(self, now: dt.datetime) -> CaBundle | None:
        roots = await asyncio.to_thread(self._load_roots, now)
        return None if roots is None else roots.ca_bundle()

    async def create(self, key_type: KeyType, trust_domain: str, now: dt.datetime) -> CaBundle:
        return (await self.create_roots(key_type, trust_domain, now)).ca_bundle()

    async def create_roots(self, key_type: KeyType, trust_domain: str, now: dt.datetime,
                           ttl: dt.timedelta = DEFAULT_ROOT_TTL) -> RootSet:
        return await asyncio.to_thread(self._create, key_type, trust_domain, now, ttl)

    async def save_roots(self, roots: RootSet, expected: RootSet, now: dt.datetime) -> None:
        await asyncio.to_thread(self._save, roots, expected, now)

    def _files(self) -> dict[str, bytes | None]:
        return {name: self.state.read(name) for name in FILE_NAMES}

    def _load_roots(self, now: dt.datetime) -> RootSet | None:
        files = self._files()
        cert, key = files[ROOT_CERT], files[ROOT_KEY]
        if cert is None and key is None:
            return None
        if cert is None or key is None:
            missing = ROOT_CERT if cert is None else ROOT_KEY
            raise CaLoadError(f"{self.state.path}: {missing} is missing but its pair exists; "
                              "restore it, or remove both to make a new root")
        return roots_from_files(files, source=str(self.state.path), now=now)

    def _write(self, roots: RootSet) -> None:
        """Write what differs, in `roots_to_files`' order (crash-safe between any two writes)."""
        for name, data in roots_to_files(roots).items():
            current = self.state.read(name)
            if data is None:
                if current is not None:
                    self.state.file(name).unlink(missing_ok=True)
            elif current != data:
                self.state.write(name, data, private=name in _PRIVATE)

    def _create(self, key_type: KeyType, trust_domain: str, now: dt.datetime, ttl: dt.timedelta) -> RootSet:
        with self.state.locked():
            existing = self._load_roots(now)
            if existing is not None:
                # A crash between two writes of a rotation step leaves files that read as one
                # state but are not laid out as it: lay them out again.
                self._write(existing)
                return existing
            roots = stable(self_signed_root(key_type, trust_domain, now=now, ttl=ttl), now)
            self._write(roots)
            return roots

    def _save(self, roots: RootSet, expected: RootSet, now: dt.datetime) -> None:
        with self.state.locked():
            current = self._load_roots(now)
            if current is None or not same_roots(current, expected):
                raise RotationError(f"{self.state.path} changed under this citadel (another citadel shares it?); "
                                    "not saving the rotation step")
            self._write(roots)


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
