"""productpage's `session` cookie: the signed-in user, signed so a client cannot forge another name.

Istio's productpage keeps the user in Flask's signed `session` cookie; this is the same idea
with the standard library (an HMAC over a small JSON payload).  The format is our own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json

COOKIE_NAME = "session"


def _sign(payload: str, secret: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def encode_session(user: str, secret: str) -> str:
    payload = base64.urlsafe_b64encode(json.dumps({"user": user}).encode()).decode().rstrip("=")
    return f"{payload}.{_sign(payload, secret)}"


def decode_session(value: str | None, secret: str) -> str | None:
    """The user in a cookie value, or None if it is missing, malformed or not signed by us."""
    if not value or "." not in value:
        return None
    payload, signature = value.rsplit(".", 1)
    if not hmac.compare_digest(signature, _sign(payload, secret)):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return None
    user = data.get("user") if isinstance(data, dict) else None
    return user if isinstance(user, str) and user else None
