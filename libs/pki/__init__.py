"""X.509 pieces shared by citadel and the agent: SPIFFE identities, key types, PEM bundles
(pure functions over `cryptography` objects), the client that asks citadel to sign, and
the control plane's own serving certificates (obtained, renewed, served over TLS).
"""

from libs.pki._citadel import (
    CitadelClient,
    CitadelError,
    CitadelRefused,
    CitadelUnavailable,
    root_file,
    token_from_file,
)
from libs.pki._errors import InvalidPem, InvalidSpiffeId, PkiError, UnsupportedKeyType
from libs.pki._keys import KEY_TYPES, KeyType, PrivateKey, PublicKey, describe_key, generate_key, parse_key_type
from libs.pki._pem import cert_pem, fingerprint, key_pem, load_certs, load_private_key, split_pem
from libs.pki._server_tls import ServerTls, ssl_context
from libs.pki._serving import (
    InvalidCertificate,
    Issued,
    ServingCertificate,
    ServingIdentity,
    accept,
    new_key_and_csr,
)
from libs.pki._spiffe import SpiffeId, parse_spiffe_id, workload_name_problem
from libs.pki._trust_report import TrustReport, holder_key

__all__ = [
    "KEY_TYPES",
    "CitadelClient",
    "CitadelError",
    "CitadelRefused",
    "CitadelUnavailable",
    "InvalidCertificate",
    "InvalidPem",
    "InvalidSpiffeId",
    "Issued",
    "KeyType",
    "PkiError",
    "PrivateKey",
    "PublicKey",
    "ServerTls",
    "ServingCertificate",
    "ServingIdentity",
    "SpiffeId",
    "TrustReport",
    "UnsupportedKeyType",
    "accept",
    "cert_pem",
    "describe_key",
    "fingerprint",
    "generate_key",
    "holder_key",
    "key_pem",
    "load_certs",
    "load_private_key",
    "new_key_and_csr",
    "parse_key_type",
    "parse_spiffe_id",
    "root_file",
    "split_pem",
    "ssl_context",
    "token_from_file",
    "workload_name_problem",
]
