"""`proxy-config secret`: the certificates an Envoy holds, from its config dump's
`SecretsConfigDump`, in istioctl's shape (istioctl/pkg/writer/compare/sds: one item per
secret with its state, the first certificate's serial and validity, `-o json` as its
SecretItem list).  Pure: JSON in, rows out.

Where istioctl shows only a secret's first certificate, every certificate of a chain gets a
row here (the leaf as `Cert Chain`, the CAs above it as `CA`), and each row names the
certificate's SPIFFE ID: which identity the proxy presents, and which roots it trusts.
Private keys are never read: Envoy's dump shows them as `[redacted]` anyway.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from dataclasses import asdict, dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tools.mizzenctl import config_dump

__all__ = ["HEADER", "SecretItem", "items", "rows", "secrets_dump"]

Json = dict[str, Any]

HEADER = ("RESOURCE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER", "NOT AFTER", "NOT BEFORE", "SPIFFE ID")


@dataclass(frozen=True)
class SecretItem:
    """One certificate of one secret (or a secret with none), istioctl's SecretItem fields
    (`resource_name`, `cert`, `state`, `cert_valid`, ...) plus its SPIFFE ID."""

    resource_name: str
    type: str
    state: str
    cert_valid: bool = False
    serial_number: str = ""
    not_after: str = ""
    not_before: str = ""
    spiffe_id: str = ""
    cert: str = ""

    def as_dict(self) -> Json:
        return asdict(self)

    def row(self) -> tuple[str, ...]:
        return (self.resource_name, self.type, self.state, str(self.cert_valid).lower(), self.serial_number,
                self.not_after, self.not_before, self.spiffe_id)


def secrets_dump(dump: Json) -> Json:
    """The `SecretsConfigDump` section of an Envoy config dump ({} when there is none)."""
    return config_dump.section(dump, "SecretsConfigDump")


def _data(source: Json | None) -> bytes:
    """The bytes of a DataSource as the dump shows it: inline_bytes (base64) or inline_string."""
    if not source:
        return b""
    if "inline_bytes" in source:
        try:
            return base64.b64decode(source["inline_bytes"])
        except (binascii.Error, ValueError):
            return b""
    return str(source.get("inline_string", "")).encode()


def _stamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _spiffe(cert: x509.Certificate) -> str:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ""
    return ",".join(uri for uri in names.get_values_for_type(x509.UniformResourceIdentifier)
                    if uri.startswith("spiffe://"))


def _serial(number: int) -> str:
    """Hex in whole bytes, as Envoy's /certs shows serials (0x0cb5... is `0cb5...`)."""
    digits = f"{number:x}"
    return digits if len(digits) % 2 == 0 else f"0{digits}"


def _certificates(name: str, state: str, pem: bytes, leaf_type: str, now: datetime.datetime) -> list[SecretItem]:
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        return [SecretItem(name, leaf_type, state)]
    found = []
    for index, cert in enumerate(certs):
        not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
        kind = leaf_type if index == 0 and leaf_type != "CA" else ("CA" if _is_ca(cert) else "Cert Chain")
        found.append(SecretItem(
            name, kind, state, cert_valid=not_before <= now <= not_after, serial_number=_serial(cert.serial_number),
            not_after=_stamp(not_after), not_before=_stamp(not_before), spiffe_id=_spiffe(cert),
            cert=cert.public_bytes(Encoding.PEM).decode()))
    return found


def _secret_items(entry: Json, state: str, now: datetime.datetime) -> list[SecretItem]:
    secret = entry.get("secret") or {}
    name = str(entry.get("name") or secret.get("name", ""))
    if state == "ACTIVE" and entry.get("version_info") == "uninitialized":
        state = "UNINITIALIZED"
    chain = _data((secret.get("tls_certificate") or {}).get("certificate_chain"))
    if chain:
        return _certificates(name, state, chain, "Cert Chain", now)
    roots = _data((secret.get("validation_context") or {}).get("trusted_ca"))
    if roots:
        return _certificates(name, state, roots, "CA", now)
    return [SecretItem(name, "", state)]


def items(dump: Json, now: datetime.datetime | None = None) -> list[SecretItem]:
    """Warming secrets first, then active ones, as istioctl lists them."""
    moment = now or datetime.datetime.now(datetime.UTC)
    part = secrets_dump(dump)
    found: list[SecretItem] = []
    for entry in part.get("dynamic_warming_secrets", []):
        found.extend(_secret_items(entry, "WARMING", moment))
    for entry in part.get("dynamic_active_secrets", []):
        found.extend(_secret_items(entry, "ACTIVE", moment))
    for entry in part.get("static_secrets", []):
        found.extend(_secret_items(entry, "STATIC", moment))
    return found


def rows(found: list[SecretItem]) -> list[tuple[str, ...]]:
    return [item.row() for item in found]
