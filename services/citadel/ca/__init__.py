"""The CA proper: key material (`CaBundle`), where it is stored (`CaStore`), CSR checks,
and signing (`CertificateAuthority`).  No network; files only in the stores."""

from services.citadel.ca.authority import CertificateAuthority, IssuancePolicy, IssuedCertificate, utc_now
from services.citadel.ca.bundle import CaBundle, assemble
from services.citadel.ca.csr import ALLOWED_KEY_TYPES, CheckedCsr, authorize, check_csr
from services.citadel.ca.root import self_signed_root
from services.citadel.ca.store import CacertsStore, CaStore, FileCaStore

__all__ = [
    "ALLOWED_KEY_TYPES",
    "CaBundle",
    "CaStore",
    "CacertsStore",
    "CertificateAuthority",
    "CheckedCsr",
    "FileCaStore",
    "IssuancePolicy",
    "IssuedCertificate",
    "assemble",
    "authorize",
    "check_csr",
    "self_signed_root",
    "utc_now",
]
