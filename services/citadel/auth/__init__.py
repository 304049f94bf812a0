"""Who is calling: bearer tokens in, (namespace, service account) out."""

from services.citadel.auth.authenticator import BootstrapTokenAuthenticator, Caller, TokenAuthenticator, bearer_token
from services.citadel.auth.key_store import FileTokenKeyStore, TokenKeyStore
from services.citadel.auth.tokens import TokenClaims, mint_token, verify_token

__all__ = [
    "BootstrapTokenAuthenticator",
    "Caller",
    "FileTokenKeyStore",
    "TokenAuthenticator",
    "TokenClaims",
    "TokenKeyStore",
    "bearer_token",
    "mint_token",
    "verify_token",
]
