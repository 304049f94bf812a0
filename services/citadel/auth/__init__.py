"""Who is calling: bearer tokens in, (namespace, service account) out."""

from services.citadel.auth.authenticator import (
    BootstrapTokenAuthenticator,
    Caller,
    CombinedAuthenticator,
    TokenAuthenticator,
    bearer_token,
)
from services.citadel.auth.key_store import FileTokenKeyStore, TokenKeyStore
from services.citadel.auth.kube import DEFAULT_AUDIENCES, KubeTokenAuthenticator
from services.citadel.auth.tokens import TokenClaims, is_bootstrap_token, mint_token, verify_token

__all__ = [
    "DEFAULT_AUDIENCES",
    "BootstrapTokenAuthenticator",
    "Caller",
    "CombinedAuthenticator",
    "FileTokenKeyStore",
    "KubeTokenAuthenticator",
    "TokenAuthenticator",
    "TokenClaims",
    "TokenKeyStore",
    "bearer_token",
    "is_bootstrap_token",
    "mint_token",
    "verify_token",
]
