"""X.509 pieces shared by citadel and the agent: SPIFFE identities, key types, PEM bundles
(pure functions over `cryptography` objects), and the client that asks citadel to sign.
"""

from libs.pki._citadel import CitadelClient, CitadelError, CitadelRefused, CitadelUnavailable, token_from_file
from libs.pki._errors import InvalidPem, InvalidSpiffeId, PkiError, UnsupportedKeyType
from libs.pki._keys import KEY_TYPES, KeyType, PrivateKey, PublicKey, describe_key, generate_key, parse_key_type
from libs.pki._pem import cert_pem, fingerprint, key_pem, load_certs, load_private_key, split_pem
from libs.pki._serving import (
    InvalidCertificate,
    Issued,
    ServingCertificate,
    ServingIdentity,
    accept,
    new_key_and_csr,
)
from libs.pki._spiffe import SpiffeId, parse_spiffe_id, workload_name_problem

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
    "ServingCertificate",
    "ServingIdentity",
    "SpiffeId",
    "UnsupportedKeyType",
    "accept",
    "cert_pem",
    "describe_key",
    "fingerprint",
    "generate_key",
    "key_pem",
    "load_certs",
    "load_private_key",
    "new_key_and_csr",
    "parse_key_type",
    "parse_spiffe_id",
    "split_pem",
    "token_from_file",
    "workload_name_problem",
]
