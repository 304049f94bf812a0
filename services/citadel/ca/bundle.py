"""The CA's key material as one checked value: signing cert and key, the chain to a root,
and every root it trusts.

Two layouts load into it: a self-signed root (the signing cert is the root) and Istio's
`cacerts` (an intermediate `ca-cert.pem` signed, maybe through more intermediates listed
in `cert-chain.pem`, by one of the roots in `root-cert.pem`; every root there is trusted,
which is how Istio rotates roots).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from libs.pki import PrivateKey, cert_pem, fingerprint
from services.citadel.errors import CaLoadError

# A chain longer than this is a configuration mistake (or a loop), not a real PKI.
MAX_CHAIN_DEPTH = 8


@dataclass(frozen=True)
class CaBundle:
    signing_cert: x509.Certificate
    signing_key: PrivateKey
    # Between the signing cert and the root, nearest first; empty for a self-signed CA.
    intermediates: tuple[x509.Certificate, ...]
    # The root the chain ends at (the signing cert itself when self-signed).
    root: x509.Certificate
    # Every root the mesh trusts; `root` is among them.
    trusted_roots: tuple[x509.Certificate, ...]

    @property
    def self_signed(self) -> bool:
        return fingerprint(self.signing_cert) == fingerprint(self.root)

    def chain_after_leaf(self) -> tuple[str, ...]:
        """What follows a leaf in a response, Istio's order: signing cert, intermediates, root last."""
        certs = [] if self.self_signed else [self.signing_cert, *self.intermediates]
        return (*(cert_pem(c) for c in certs), cert_pem(self.root))

    def trust_bundle_pem(self) -> str:
        """Every trusted root, the one the signing chain ends at first (agents renew a
        certificate from any other)."""
        others = [c for c in self.trusted_roots if fingerprint(c) != fingerprint(self.root)]
        return "".join(cert_pem(c) for c in (self.root, *others))


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    if not constraints.ca:
        return False
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    except x509.ExtensionNotFound:
        return True


def _describe(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or f"serial {cert.serial_number:x}"


def assemble(signing_cert: x509.Certificate, signing_key: PrivateKey, chain: Sequence[x509.Certificate],
             roots: Sequence[x509.Certificate], *, source: str, now: dt.datetime) -> CaBundle:
    """Check the material and find the path from the signing cert to a trusted root."""
    if not roots:
        raise CaLoadError(f"{source}: no root certificate")
    if signing_key.public_key() != signing_cert.public_key():
        raise CaLoadError(f"{source}: the CA key does not belong to the CA certificate ({_describe(signing_cert)})")
    if not _is_ca(signing_cert):
        raise CaLoadError(f"{source}: the CA certificate ({_describe(signing_cert)}) is not a CA "
                          "(basicConstraints CA:TRUE and keyCertSign are required)")
    for cert in (signing_cert, *roots):
        if cert.not_valid_after_utc <= now:
            raise CaLoadError(f"{source}: certificate {_describe(cert)} expired at {cert.not_valid_after_utc}")
    root_prints = {fingerprint(r): r for r in roots}
    candidates = [c for c in chain if fingerprint(c) not in root_prints]
    path: list[x509.Certificate] = []
    current = signing_cert
    for _ in range(MAX_CHAIN_DEPTH):
        if fingerprint(current) in root_prints:
            return CaBundle(signing_cert, signing_key, tuple(path[1:]), current, tuple(roots))
        path.append(current)
        anchor = next((r for r in roots if _issued_by(current, r)), None)
        if anchor is not None:
            return CaBundle(signing_cert, signing_key, tuple(path[1:]), anchor, tuple(roots))
        issuer = next((c for c in candidates if c not in path and _issued_by(current, c)), None)
        if issuer is None:
            raise CaLoadError(f"{source}: no certificate in the chain or roots issued {_describe(current)} "
                              f"(issuer {current.issuer.rfc4514_string()}); the chain does not reach a root")
        current = issuer
    raise CaLoadError(f"{source}: the chain is longer than {MAX_CHAIN_DEPTH} certificates")
