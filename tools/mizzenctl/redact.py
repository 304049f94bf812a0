"""Taking secrets out of what mizzenctl prints or archives (`bug-report`, `proxy-config -o
json`): private keys, tokens and secret fields, wherever they hide.  Pure.

- JSON (config dumps, config): the value of any field named like a secret (`private_key`,
  `password`, `token`, ...) becomes `[redacted]`, and so does any string that carries a
  private key, in PEM or base64-encoded PEM (an SDS secret's `inline_bytes`).  Certificates
  are public and kept: they say who a proxy is and whom it trusts.
- Text (logs): PEM private-key blocks, JWTs, `Bearer` credentials and the literal secrets
  the caller knows of (the galley API token) are replaced.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["REDACTED", "SECRET_FIELDS", "redact_json", "redact_text"]

REDACTED = "[redacted]"
# Envoy's secret-bearing fields (TlsCertificate, GenericSecret, TlsSessionTicketKeys,
# HMAC secrets, ...) and the usual names of credentials in config.
SECRET_FIELDS = frozenset({
    "private_key", "password", "generic_secret", "session_ticket_keys", "hmac_secret", "secret_key",
    "client_secret", "token", "access_token", "refresh_token", "api_key", "bearer_token", "authorization",
})

_PEM_KEY = re.compile(r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----", re.DOTALL)
_ESCAPED_PEM_KEY = re.compile(r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----(?:\\n|.)*?-----END \1PRIVATE KEY-----")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")
_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]{40,}$")


def _hides_private_key(value: str) -> bool:
    """Whether a string is (base64 of) a PEM private key."""
    if "PRIVATE KEY-----" in value:
        return True
    if not _BASE64.match(value):
        return False
    try:
        return b"PRIVATE KEY-----" in base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        return False


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    text = _PEM_KEY.sub(f"{REDACTED} private key", text)
    text = _ESCAPED_PEM_KEY.sub(f"{REDACTED} private key", text)
    text = _JWT.sub(f"{REDACTED} token", text)
    text = _BEARER.sub(rf"\g<1>{REDACTED}", text)
    for secret in secrets:
        if len(secret) >= 8:
            text = text.replace(secret, REDACTED)
    return text


def redact_json(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of `value` with secrets replaced (the input is not changed)."""
    known = tuple(secrets)

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: REDACTED if key.lower() in SECRET_FIELDS and item not in (None, "", {}, [])
                    else walk(item) for key, item in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, str):
            return REDACTED if _hides_private_key(node) else redact_text(node, known)
        return node

    return walk(value)
