"""The local mesh's bootstrap token: a JWT (HS256) that citadel mints for one namespace and
service account, with an expiry, and later accepts as proof of that identity.

JWT-shaped so standard tools can read it and a Kubernetes token could later take its
place behind the same authenticator seam; built on the stdlib (hmac, hashlib, base64,
json) because the whole format is these few lines.

    header  {"alg": "HS256", "typ": "JWT", "kid": <key id>}
    payload {"iss": "mizzen-citadel", "aud": "istio-ca",
             "sub": "system:serviceaccount:<ns>:<sa>", "iat": <s>, "exp": <s>, "jti": <random>}
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from libs.pki import workload_name_problem
from services.citadel.errors import Unauthenticated

ISSUER = "mizzen-citadel"
# Istio's CA accepts tokens for this audience.
AUDIENCE = "istio-ca"
SUBJECT_PREFIX = "system:serviceaccount:"
MAX_TOKEN_BYTES = 4096
# A token issued by a host whose clock runs ahead by up to this much is still accepted.
CLOCK_SKEW_S = 60


@dataclass(frozen=True, slots=True)
class TokenClaims:
    namespace: str
    service_account: str
    issued_at: int
    expires_at: int
    token_id: str


def key_id(key: bytes) -> str:
    """Names the key without revealing it, so an error can say "signed by another key"."""
    return hashlib.sha256(b"mizzen-token-key:" + key).hexdigest()[:16]


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str, part: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Unauthenticated(f"token {part} is not base64url") from exc


def _json(data: bytes, part: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unauthenticated(f"token {part} is not JSON") from exc
    if not isinstance(value, dict):
        raise Unauthenticated(f"token {part} is not a JSON object")
    return value


def _sign(key: bytes, signing_input: str) -> bytes:
    return hmac.new(key, signing_input.encode(), hashlib.sha256).digest()


def mint_token(key: bytes, namespace: str, service_account: str, *, ttl_s: int, now: float) -> str:
    problem = workload_name_problem(namespace, service_account)
    if problem:
        raise ValueError(problem)
    if ttl_s <= 0:
        raise ValueError(f"token lifetime must be positive, not {ttl_s}s")
    header = {"alg": "HS256", "typ": "JWT", "kid": key_id(key)}
    issued = int(now)
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": f"{SUBJECT_PREFIX}{namespace}:{service_account}",
               "iat": issued, "exp": issued + ttl_s, "jti": secrets.token_hex(8)}
    signing_input = ".".join(_b64encode(json.dumps(p, separators=(",", ":")).encode()) for p in (header, payload))
    return f"{signing_input}.{_b64encode(_sign(key, signing_input))}"


def is_bootstrap_token(token: str) -> bool:
    """Whether `token` is shaped as this format (a JWT whose header says HS256).

    Kubernetes service-account tokens are RS256 or ES256 JWTs, so the header tells the two
    apart without a key; a forged HS256 token is still refused by `verify_token`."""
    if len(token) > MAX_TOKEN_BYTES or token.count(".") != 2:
        return False
    try:
        header = _json(_b64decode(token.partition(".")[0], "header"), "header")
    except Unauthenticated:
        return False
    return header.get("alg") == "HS256"


def verify_token(key: bytes, token: str, *, now: float) -> TokenClaims:
    """Check signature, issuer, audience and lifetime; raise Unauthenticated saying which failed."""
    if len(token) > MAX_TOKEN_BYTES:
        raise Unauthenticated(f"token is longer than {MAX_TOKEN_BYTES} bytes")
    parts = token.split(".")
    if len(parts) != 3:
        raise Unauthenticated("token is not a JWT (header.payload.signature)")
    header = _json(_b64decode(parts[0], "header"), "header")
    if header.get("alg") != "HS256":
        raise Unauthenticated(f"token algorithm {header.get('alg')!r} is not accepted (HS256 only)")
    signature = _b64decode(parts[2], "signature")
    if not hmac.compare_digest(signature, _sign(key, f"{parts[0]}.{parts[1]}")):
        if header.get("kid") != key_id(key):
            raise Unauthenticated("token was signed with another key, not this citadel's")
        raise Unauthenticated("token signature does not verify (forged or altered)")
    claims = _json(_b64decode(parts[1], "payload"), "payload")
    if claims.get("iss") != ISSUER or claims.get("aud") != AUDIENCE:
        raise Unauthenticated(f"token issuer/audience {claims.get('iss')!r}/{claims.get('aud')!r} "
                              f"is not {ISSUER!r}/{AUDIENCE!r}")
    issued, expires = claims.get("iat"), claims.get("exp")
    if not isinstance(issued, int) or not isinstance(expires, int):
        raise Unauthenticated("token has no integer iat/exp")
    if expires <= now:
        raise Unauthenticated(f"token expired {int(now - expires)}s ago")
    if issued > now + CLOCK_SKEW_S:
        raise Unauthenticated("token is issued in the future")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.startswith(SUBJECT_PREFIX) or subject.count(":") != 3:
        raise Unauthenticated(f"token subject {subject!r} is not system:serviceaccount:<ns>:<sa>")
    namespace, service_account = subject.removeprefix(SUBJECT_PREFIX).split(":")
    problem = workload_name_problem(namespace, service_account)
    if problem:
        raise Unauthenticated(f"token subject: {problem}")
    return TokenClaims(namespace, service_account, issued, expires, str(claims.get("jti", "")))
