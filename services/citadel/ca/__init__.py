"""The CA proper: key material (`CaBundle`), where it is stored (`CaStore`), CSR checks,
and signing (`CertificateAuthority`).  I/O only in the stores: files, or the Kubernetes
API for the Secret store."""

from services.citadel.ca.authority import (
    CertificateAuthority,
    IssuancePolicy,
    IssuedCertificate,
    parse_dns_grants,
    utc_now,
)
from services.citadel.ca.bundle import CaBundle, assemble
from services.citadel.ca.csr import ALLOWED_KEY_TYPES, CheckedCsr, authorize, check_csr
from services.citadel.ca.root import self_signed_root
from services.citadel.ca.store import CacertsStore, CaStore, FileCaStore
from services.citadel.ca.store_kube import CA_SECRET_NAME, KubeSecretCaStore, bundle_from_secret, secret_body

__all__ = [
    "ALLOWED_KEY_TYPES",
    "CA_SECRET_NAME",
    "CaBundle",
    "CaStore",
    "CacertsStore",
    "CertificateAuthority",
    "CheckedCsr",
    "FileCaStore",
    "IssuancePolicy",
    "IssuedCertificate",
    "KubeSecretCaStore",
    "assemble",
    "authorize",
    "bundle_from_secret",
    "check_csr",
    "parse_dns_grants",
    "secret_body",
    "self_signed_root",
    "utc_now",
]
