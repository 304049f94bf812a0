"""A JWT issuer for tests of Envoy's jwt_authn filter (Istio RequestAuthentication): an RSA key
that signs RS256 tokens, its public JWK Set, and a loopback HTTP server publishing that set as
a `jwksUri`. Built on `cryptography` alone so the signing is plain to read and nothing hides
which bytes Envoy is asked to verify.

`expired_token` and `forged_token` make the tokens a test expects Envoy to reject: one past its
`exp`, one with the right `kid` but signed by a key the JWKS does not hold."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from samples.echo import HttpServer


def b64url(data: bytes) -> str:
    """Base64url without padding, as JWS and JWK (RFC 7515 section 2) require."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _uint(value: int) -> str:
    # JWK integers are unsigned big-endian with no leading zero octets (RFC 7518 section 6.3.1).
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _compact_json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class JwtIssuer:
    """`JwtIssuer("https://issuer.test")`: one RSA 2048 key, identified by `kid` in tokens and JWKS.

    The default `kid` is the key's RFC 7638 thumbprint, so two issuers never share one by accident.
    """

    def __init__(self, issuer: str, *, kid: str | None = None) -> None:
        self.issuer = issuer
        self._key = _new_key()
        numbers = self._key.public_key().public_numbers()
        self._n, self._e = _uint(numbers.n), _uint(numbers.e)
        self.kid = kid or b64url(hashlib.sha256(_compact_json({"e": self._e, "kty": "RSA", "n": self._n})).digest())
        # Made on first use: generating an RSA key is the slow part of constructing an issuer.
        self._forger: rsa.RSAPrivateKey | None = None

    def jwks(self) -> dict[str, Any]:
        return {"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid, "n": self._n, "e": self._e}]}

    def jwks_json(self) -> str:
        return json.dumps(self.jwks())

    def token(self, sub: str, *, audience: str | list[str] | None = None, claims: dict[str, Any] | None = None,
              expires_in_s: int = 3600, issuer: str | None = None) -> str:
        """A signed compact JWS. `claims` are merged last, so a test can also override `iat` or `exp`."""
        now = int(time.time())
        return self._sign(self._key, self._payload(sub, audience, claims, now, now + expires_in_s, issuer))

    def expired_token(self, sub: str, *, audience: str | list[str] | None = None,
                      claims: dict[str, Any] | None = None) -> str:
        """Valid in every way but `exp`, an hour ago: well past Envoy's default 60s clock skew."""
        now = int(time.time())
        return self._sign(self._key, self._payload(sub, audience, claims, now - 7200, now - 3600, None))

    def forged_token(self, sub: str, *, audience: str | list[str] | None = None,
                     claims: dict[str, Any] | None = None) -> str:
        """Same header (and `kid`) and claims as `token`, but signed by a key the JWKS does not publish."""
        if self._forger is None:
            self._forger = _new_key()
        now = int(time.time())
        return self._sign(self._forger, self._payload(sub, audience, claims, now, now + 3600, None))

    def _payload(self, sub: str, audience: str | list[str] | None, claims: dict[str, Any] | None, iat: int,
                 exp: int, issuer: str | None) -> dict[str, Any]:
        payload: dict[str, Any] = {"iss": issuer if issuer is not None else self.issuer, "sub": sub, "iat": iat,
                                   "exp": exp}
        if audience is not None:
            payload["aud"] = audience
        payload.update(claims or {})
        return payload

    def _sign(self, key: rsa.RSAPrivateKey, payload: dict[str, Any]) -> str:
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        signing_input = f"{b64url(_compact_json(header))}.{b64url(_compact_json(payload))}"
        signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(signature)}"


class JwksServer:
    """`with JwksServer(issuer) as jwks: jwks.url`; `jwks.requests` counts the JWKS answers served."""

    def __init__(self, issuer: JwtIssuer, host: str = "127.0.0.1", *, path: str = "/jwks.json") -> None:
        self.issuer = issuer
        self.path = path
        self.requests = 0
        self._lock = threading.Lock()
        self._server = HttpServer((host, 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"jwks-{self.port}", daemon=True)

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            # Left at HTTP/1.0, so every answer ends its connection: a kept-alive one would outlive
            # stop() and keep answering a fetcher that a test means to cut off.
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != owner.path:
                    self._answer(404, b"not found\n", "text/plain")
                    return
                with owner._lock:
                    owner.requests += 1
                self._answer(200, owner.issuer.jwks_json().encode(), "application/json")

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> JwksServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever, forever if it never ran
            self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> JwksServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
