"""`proxy-config secret|bootstrap|log` formatting in istioctl's shapes, from a real Envoy's
secrets and bootstrap (testdata/README.md) and Envoy's `/logging` answers."""

from __future__ import annotations

import base64
import datetime
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tools.mizzenctl import envoy_logging, proxy_config_admin, proxy_secrets
from tools.mizzenctl.table import render

DATA = Path(__file__).parent / "testdata"
DURING = datetime.datetime(2026, 12, 5, 18, 0, tzinfo=datetime.UTC)
AFTER = datetime.datetime(2026, 12, 7, tzinfo=datetime.UTC)


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def test_secret_table_in_istioctls_columns_with_the_spiffe_id() -> None:
    items = proxy_secrets.items(load("envoy_secrets_dump.json"), DURING)
    assert render(proxy_secrets.HEADER, proxy_secrets.rows(items)) == (
        "RESOURCE NAME     TYPE           STATUS     VALID CERT     SERIAL NUMBER                                "
        "NOT AFTER                NOT BEFORE               SPIFFE ID\n"
        "default           Cert Chain     ACTIVE     true           151f3d9e6605579a1e8a443c29b72aac236936f8     "
        "2026-12-06T16:08:24Z     2026-12-05T16:07:24Z     spiffe://cluster.local/ns/default/sa/bookinfo-productpage\n"
        "ROOTCA            CA             ACTIVE     true           674b265198cb4ab39f726247988adf595e0d01ad     "
        "2036-12-02T16:08:21Z     2026-12-05T16:03:21Z\n")


def test_an_expired_certificate_is_not_valid() -> None:
    default, root = proxy_secrets.items(load("envoy_secrets_dump.json"), AFTER)
    assert (default.cert_valid, root.cert_valid) == (False, True)


def test_secret_json_is_istioctls_secret_items_without_private_keys() -> None:
    (default, _root) = [item.as_dict() for item in proxy_secrets.items(load("envoy_secrets_dump.json"), DURING)]
    assert {key: default[key] for key in ("resource_name", "type", "state", "cert_valid", "spiffe_id")} == {
        "resource_name": "default", "type": "Cert Chain", "state": "ACTIVE", "cert_valid": True,
        "spiffe_id": "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"}
    assert default["cert"].startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE" not in json.dumps(default)


def _certificate(name: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None, *, ca: bool,
                 spiffe: str = "") -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, name)])
    issuer_name, issuer_key = issuer if issuer else (subject, key)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name).public_key(key.public_key())
               .serial_number(0xABC if ca else 0x123)
               .not_valid_before(datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC))
               .not_valid_after(datetime.datetime(2027, 1, 1, tzinfo=datetime.UTC))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if spiffe:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe)]),
                                        critical=True)
    return builder.sign(issuer_key, hashes.SHA256()), key


def test_every_certificate_of_a_chain_gets_a_row_and_warming_secrets_come_first() -> None:
    intermediate, intermediate_key = _certificate("intermediate", None, ca=True)
    leaf, _ = _certificate("leaf", (intermediate.subject, intermediate_key), ca=False,
                           spiffe="spiffe://cluster.local/ns/shop/sa/cart")
    chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, intermediate))
    certificate = {"certificate_chain": {"inline_bytes": base64.b64encode(chain).decode()},
                   "private_key": {"inline_bytes": "W3JlZGFjdGVkXQ=="}}
    dump = {"configs": [{
        "@type": "type.googleapis.com/envoy.admin.v3.SecretsConfigDump",
        "dynamic_active_secrets": [{"name": "default", "version_info": "1", "secret": {
            "name": "default", "tls_certificate": certificate}},
            {"name": "kubernetes://gone", "version_info": "uninitialized", "secret": {"name": "kubernetes://gone"}}],
        "dynamic_warming_secrets": [{"name": "file-root:/etc/ca.pem", "secret": {"name": "file-root:/etc/ca.pem"}}],
    }]}
    rows = proxy_secrets.rows(proxy_secrets.items(dump, DURING))
    assert rows == [
        ("file-root:/etc/ca.pem", "", "WARMING", "false", "", "", "", ""),
        ("default", "Cert Chain", "ACTIVE", "true", "0123", "2027-01-01T00:00:00Z", "2026-01-01T00:00:00Z",
         "spiffe://cluster.local/ns/shop/sa/cart"),
        ("default", "CA", "ACTIVE", "true", "0abc", "2027-01-01T00:00:00Z", "2026-01-01T00:00:00Z", ""),
        ("kubernetes://gone", "", "UNINITIALIZED", "false", "", "", "", ""),
    ]


def test_no_secrets_section_means_no_items() -> None:
    assert proxy_secrets.items({"configs": []}) == []


def test_bootstrap_summary_names_the_mizzen_and_envoy_versions() -> None:
    assert proxy_config_admin.bootstrap_summary(load("envoy_secrets_dump.json")) == (
        "Mizzen Version: 0.1.0\n"
        "Envoy Version:  1.40.0/Clean/RELEASE/BoringSSL\n")


LISTING = """\
active loggers:
  admin: warning
  http: debug
  router: info
  upstream: warning
"""


def test_envoys_logging_listing_is_read_by_logger() -> None:
    assert envoy_logging.parse_listing(LISTING) == {"admin": "warning", "http": "debug", "router": "info",
                                                    "upstream": "warning"}


@pytest.mark.parametrize(("spec", "changes"), [
    ("debug", [("level", "debug")]),
    ("http:debug,router=info", [("http", "debug"), ("router", "info")]),
    # Every logger first, then the named ones, whatever the order given (istioctl's order).
    ("http:trace,warn", [("level", "warning"), ("http", "trace")]),
    ("none", [("level", "off")]),
    ("level:error", [("level", "error")]),
])
def test_level_flags_become_envoys_logging_changes(spec: str, changes: list[tuple[str, str]]) -> None:
    assert envoy_logging.parse_levels(spec, {"http", "router"}) == changes


@pytest.mark.parametrize(("spec", "error"), [
    ("loud", "unrecognized logging level 'loud'"),
    ("htp:debug", "unrecognized logger name 'htp'"),
    ("http:verbose", "unrecognized logging level 'verbose'"),
    (",", "--level names no level"),
])
def test_bad_levels_are_refused_before_envoy_is_asked(spec: str, error: str) -> None:
    with pytest.raises(envoy_logging.LevelError, match=error):
        envoy_logging.parse_levels(spec, {"http"})
