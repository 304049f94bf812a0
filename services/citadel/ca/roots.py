"""Citadel's own self-signed roots as one value, `RootSet`, and how it is laid out in files
and in the CA Secret.  Pure: bytes in, bytes out.

Three phases of a root rotation (see `services.citadel.rotation`):

    STABLE     one root; it signs.                         bundle [A]
    PUBLISHED  a new root is trusted beside it; A signs.   bundle [A, B]
    SWITCHED   the new root signs; A is still trusted.     bundle [B, A]
    (drop)     A leaves the bundle: STABLE again.          bundle [B]

The trust bundle lists the root that signs first: agents renew a certificate that hangs off
any other root, and a root that leaves the bundle when it is no longer first was retired by
a rotation (agents drop it at once instead of keeping it for their retention time).

Files in citadel's state dir (`FileCaStore`):
    root-cert.pem       the trust bundle, in that order (what agents, pilot and the injector
                        read as citadel's root)
    root-key.pem        the signing root's key (0600); the signing root is the bundle's
                        certificate for this key
    next-root-cert.pem, next-root-key.pem   the published root that does not sign yet
    rotation.json       {"phase_since": ISO time}: when the current phase began
The Secret (`KubeSecretCaStore`, Istio's `istio-ca-secret`): `ca-cert.pem` and `ca-key.pem`
(the signing root, Istio's keys), and while rotating `root-cert.pem` (the bundle, as Istio
keeps several roots there), `next-ca-cert.pem`, `next-ca-key.pem` and `rotation.json`.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace

from cryptography import x509

from libs.pki import InvalidPem, cert_pem, fingerprint, key_pem, load_certs, load_private_key
from services.citadel.ca.bundle import CaBundle, assemble
from services.citadel.errors import CaLoadError, RotationError

ROOT_CERT, ROOT_KEY = "root-cert.pem", "root-key.pem"
NEXT_ROOT_CERT, NEXT_ROOT_KEY = "next-root-cert.pem", "next-root-key.pem"
ROTATION = "rotation.json"
# The Secret's keys (Istio's for the signing root).
CA_CERT, CA_KEY = "ca-cert.pem", "ca-key.pem"
NEXT_CA_CERT, NEXT_CA_KEY = "next-ca-cert.pem", "next-ca-key.pem"
FILE_NAMES = (NEXT_ROOT_KEY, NEXT_ROOT_CERT, ROOT_KEY, ROTATION, ROOT_CERT)


class Phase(enum.StrEnum):
    STABLE = "stable"
    PUBLISHED = "published"
    SWITCHED = "switched"


@dataclass(frozen=True)
class RootSet:
    signing: CaBundle  # self-signed: its signing cert is its root
    since: dt.datetime  # when the current phase began
    next: CaBundle | None = None  # published, not signing yet
    retiring: tuple[x509.Certificate, ...] = ()  # no longer signing, still trusted

    @property
    def phase(self) -> Phase:
        if self.next is not None:
            return Phase.PUBLISHED
        return Phase.SWITCHED if self.retiring else Phase.STABLE

    @property
    def root(self) -> x509.Certificate:
        return self.signing.root

    def trusted(self) -> tuple[x509.Certificate, ...]:
        """The trust bundle: the signing root first, then the one to come, then the retiring."""
        upcoming = (self.next.root,) if self.next is not None else ()
        return (self.signing.root, *upcoming, *self.retiring)

    def trust_bundle_pem(self) -> str:
        return "".join(cert_pem(c) for c in self.trusted())

    def fingerprints(self) -> tuple[str, ...]:
        return tuple(fingerprint(c) for c in self.trusted())

    def ca_bundle(self) -> CaBundle:
        """What the CA signs with: the signing root, trusting the whole bundle."""
        return replace(self.signing, trusted_roots=self.trusted())

    # -- transitions (the rotation decides when) -------------------------------------------

    def begin(self, new_root: CaBundle, now: dt.datetime) -> RootSet:
        """Publish `new_root` beside the signing root."""
        if self.phase is not Phase.STABLE:
            raise RotationError(f"a rotation is already under way (phase {self.phase})")
        return RootSet(self.signing, now, next=new_root)

    def switch(self, now: dt.datetime) -> RootSet:
        """Sign with the published root; the old one stays trusted."""
        if self.next is None:
            raise RotationError(f"no published root to sign with (phase {self.phase})")
        return RootSet(self.next, now, retiring=(self.signing.root, *self.retiring))

    def drop(self, now: dt.datetime) -> RootSet:
        """Stop trusting the retired roots."""
        if self.phase is not Phase.SWITCHED:
            raise RotationError(f"nothing to drop (phase {self.phase})")
        return RootSet(self.signing, now)


def stable(signing: CaBundle, now: dt.datetime) -> RootSet:
    return RootSet(signing, now)


# -- layouts ------------------------------------------------------------------------------

def _self_signed(cert: x509.Certificate, key_pem_bytes: bytes, *, what: str, now: dt.datetime) -> CaBundle:
    try:
        key = load_private_key(key_pem_bytes, what=what)
    except InvalidPem as exc:
        raise CaLoadError(str(exc)) from exc
    return assemble(cert, key, [], [cert], source=what, now=now)


def _since(raw: bytes | None, now: dt.datetime) -> dt.datetime:
    """When the phase began; a missing or unreadable record counts from now (a phase is then
    only ever longer, never shorter)."""
    if not raw:
        return now
    try:
        since = dt.datetime.fromisoformat(json.loads(raw)["phase_since"])
    except (ValueError, KeyError, TypeError):
        return now
    return since if since.tzinfo is not None else since.replace(tzinfo=dt.UTC)


def _certs(raw: bytes, what: str) -> list[x509.Certificate]:
    try:
        return load_certs(raw, what=what)
    except InvalidPem as exc:
        raise CaLoadError(str(exc)) from exc


def assemble_roots(bundle: list[x509.Certificate], signing_cert: x509.Certificate | None, key: bytes,
                   next_pair: tuple[bytes, bytes] | None, rotation: bytes | None, *, source: str,
                   now: dt.datetime) -> RootSet:
    """A RootSet from stored parts.  `signing_cert` None: the bundle's certificate for `key`.
    A next root that is not in the bundle (a rotation that crashed before publishing it) or
    that already signs (one that crashed while switching) is ignored; expired retiring roots
    are left out."""
    try:
        public = load_private_key(key, what=f"{source} signing key").public_key()
    except InvalidPem as exc:
        raise CaLoadError(str(exc)) from exc
    if signing_cert is None:
        signing_cert = next((c for c in bundle if c.public_key() == public), None)
        if signing_cert is None:
            raise CaLoadError(f"{source}: no certificate in the root bundle belongs to the root key; restore the "
                              "pair, or remove both to make a new root")
    signing = _self_signed(signing_cert, key, what=source, now=now)
    prints = [fingerprint(c) for c in bundle]
    if fingerprint(signing_cert) not in prints:
        bundle = [signing_cert, *bundle]
        prints.insert(0, fingerprint(signing_cert))
    upcoming: CaBundle | None = None
    if next_pair is not None:
        next_cert = _certs(next_pair[0], f"{source} next root")[0]
        if fingerprint(next_cert) in prints and fingerprint(next_cert) != fingerprint(signing_cert):
            upcoming = _self_signed(next_cert, next_pair[1], what=f"{source} next root", now=now)
    skip = {fingerprint(signing_cert), *([fingerprint(upcoming.root)] if upcoming else [])}
    retiring = tuple(c for c in bundle if fingerprint(c) not in skip and c.not_valid_after_utc > now)
    return RootSet(signing, _since(rotation, now), upcoming, retiring)


def roots_from_files(files: Mapping[str, bytes | None], *, source: str, now: dt.datetime) -> RootSet:
    """From the state dir's files (root-cert.pem and root-key.pem present)."""
    cert, key = files.get(ROOT_CERT), files.get(ROOT_KEY)
    if cert is None or key is None:
        raise CaLoadError(f"{source}: {ROOT_CERT} and {ROOT_KEY} are both needed")
    next_cert, next_key = files.get(NEXT_ROOT_CERT), files.get(NEXT_ROOT_KEY)
    pair = (next_cert, next_key) if next_cert and next_key else None
    return assemble_roots(_certs(cert, f"{source}/{ROOT_CERT}"), None, key, pair, files.get(ROTATION),
                          source=source, now=now)


def _rotation_record(roots: RootSet) -> bytes:
    return json.dumps({"phase": str(roots.phase), "phase_since": roots.since.isoformat()}).encode() + b"\n"


def roots_to_files(roots: RootSet) -> dict[str, bytes | None]:
    """Every file's content (None: the file must not exist), in the order to write them so
    that a crash between two writes leaves a state `roots_from_files` reads as the old or
    the new one: next root, signing key, phase record, the bundle, and the removals last
    (a next root's files outlive the bundle that stops naming it as next)."""
    upcoming = roots.next
    files = {
        NEXT_ROOT_KEY: key_pem(upcoming.signing_key) if upcoming else None,
        NEXT_ROOT_CERT: cert_pem(upcoming.root).encode() if upcoming else None,
        ROOT_KEY: key_pem(roots.signing.signing_key),
        ROTATION: _rotation_record(roots) if roots.phase is not Phase.STABLE else None,
        ROOT_CERT: roots.trust_bundle_pem().encode(),
    }
    return {**{k: v for k, v in files.items() if v is not None}, **{k: v for k, v in files.items() if v is None}}


def roots_from_secret_data(data: Mapping[str, bytes], *, source: str, now: dt.datetime) -> RootSet:
    """From the Secret's decoded data (ca-cert.pem and ca-key.pem present)."""
    signing_cert = _certs(data[CA_CERT], f"{source} {CA_CERT}")[0]
    bundle = _certs(data[ROOT_CERT], f"{source} {ROOT_CERT}") if data.get(ROOT_CERT) else [signing_cert]
    pair = (data[NEXT_CA_CERT], data[NEXT_CA_KEY]) if data.get(NEXT_CA_CERT) and data.get(NEXT_CA_KEY) else None
    return assemble_roots(bundle, signing_cert, data[CA_KEY], pair, data.get(ROTATION), source=source, now=now)


def roots_to_secret_data(roots: RootSet) -> dict[str, bytes]:
    """The Secret's data; a stable root keeps Istio's two keys only."""
    data = {CA_CERT: cert_pem(roots.root).encode(), CA_KEY: key_pem(roots.signing.signing_key)}
    if roots.phase is not Phase.STABLE:
        data[ROOT_CERT] = roots.trust_bundle_pem().encode()
        data[ROTATION] = _rotation_record(roots)
    if roots.next is not None:
        data[NEXT_CA_CERT] = cert_pem(roots.next.root).encode()
        data[NEXT_CA_KEY] = key_pem(roots.next.signing_key)
    return data
