"""The test JWT issuer: its tokens verify against its own JWKS the way Envoy verifies them
(RS256 with the key the `kid` names), forged ones do not, and JwksServer publishes the set."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.harness.http import HTTP
from tests.harness.jwt_issuer import JwksServer, JwtIssuer, b64url_decode


@pytest.fixture(scope="module")
def issuer() -> JwtIssuer:
    return JwtIssuer("https://issuer.test")


def part(token: str, index: int) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(b64url_decode(token.split(".")[index]))
    return decoded


def verify(token: str, jwks: dict[str, Any]) -> None:
    """Raise InvalidSignature unless the JWKS key named by the token's `kid` signed it."""
    signing_input, _, signature = token.rpartition(".")
    [jwk] = [k for k in jwks["keys"] if k["kid"] == part(token, 0)["kid"]]
    public = rsa.RSAPublicNumbers(int.from_bytes(b64url_decode(jwk["e"]), "big"),
                                  int.from_bytes(b64url_decode(jwk["n"]), "big")).public_key()
    public.verify(b64url_decode(signature), signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())


def test_jwks_is_an_unpadded_rs256_key_set(issuer: JwtIssuer) -> None:
    [jwk] = issuer.jwks()["keys"]
    assert {k: jwk[k] for k in ("kty", "alg", "use", "kid")} == {
        "kty": "RSA", "alg": "RS256", "use": "sig", "kid": issuer.kid}
    assert jwk["e"] == "AQAB"
    assert "=" not in jwk["n"]
    assert len(b64url_decode(jwk["n"])) == 256
    assert json.loads(issuer.jwks_json()) == issuer.jwks()


def test_token_verifies_against_the_jwks_and_carries_its_claims(issuer: JwtIssuer) -> None:
    token = issuer.token("alice", audience=["a", "b"], claims={"groups": ["dev"], "org": {"team": "mesh"}},
                         expires_in_s=60)
    verify(token, issuer.jwks())
    assert part(token, 0) == {"alg": "RS256", "typ": "JWT", "kid": issuer.kid}
    payload = part(token, 1)
    now = time.time()
    assert payload["iss"] == "https://issuer.test"
    assert payload["sub"] == "alice"
    assert payload["aud"] == ["a", "b"]
    assert payload["groups"] == ["dev"]
    assert payload["org"] == {"team": "mesh"}
    assert payload["exp"] - payload["iat"] == 60
    assert abs(payload["iat"] - now) < 5
    assert "=" not in token


def test_token_without_audience_has_no_aud_and_issuer_can_be_overridden(issuer: JwtIssuer) -> None:
    payload = part(issuer.token("bob", issuer="https://other.test"), 1)
    assert "aud" not in payload
    assert payload["iss"] == "https://other.test"


def test_expired_token_is_signed_but_past_exp(issuer: JwtIssuer) -> None:
    token = issuer.expired_token("alice", audience="a")
    verify(token, issuer.jwks())
    payload = part(token, 1)
    assert payload["exp"] < time.time() - 60
    assert payload["aud"] == "a"


def test_forged_token_names_the_kid_but_does_not_verify(issuer: JwtIssuer) -> None:
    token = issuer.forged_token("mallory")
    assert part(token, 0)["kid"] == issuer.kid
    with pytest.raises(InvalidSignature):
        verify(token, issuer.jwks())


def test_jwks_server_serves_the_set_and_counts_fetches(issuer: JwtIssuer) -> None:
    with JwksServer(issuer, path="/keys") as server:
        assert server.url == f"http://127.0.0.1:{server.port}/keys"
        assert server.requests == 0
        response = HTTP.get(server.url, timeout=5)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json() == issuer.jwks()
        assert HTTP.get(f"http://127.0.0.1:{server.port}/other", timeout=5).status_code == 404
        assert server.requests == 1
    with pytest.raises(httpx.ConnectError):
        HTTP.get(server.url, timeout=5)
