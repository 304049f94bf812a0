"""X.509 pieces shared by citadel and the agent: SPIFFE identities, key types, PEM bundles.

Pure functions over `cryptography` objects; no I/O.
"""

from libs.pki._errors import InvalidPem, InvalidSpiffeId, PkiError, UnsupportedKeyType
from libs.pki._keys import KEY_TYPES, KeyType, PrivateKey, PublicKey, describe_key, generate_key, parse_key_type
from libs.pki._pem import cert_pem, fingerprint, key_pem, load_certs, load_private_key, split_pem
from libs.pki._spiffe import SpiffeId, parse_spiffe_id, workload_name_problem

__all__ = [
    "KEY_TYPES",
    "InvalidPem",
    "InvalidSpiffeId",
    "KeyType",
    "PkiError",
    "PrivateKey",
    "PublicKey",
    "SpiffeId",
    "UnsupportedKeyType",
    "cert_pem",
    "describe_key",
    "fingerprint",
    "generate_key",
    "key_pem",
    "load_certs",
    "load_private_key",
    "parse_key_type",
    "parse_spiffe_id",
    "split_pem",
    "workload_name_problem",
]
