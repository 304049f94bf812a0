"""Bootstrap tokens: minted, verified, and refused when expired, forged or from another key."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from services.citadel.auth import (
    BootstrapTokenAuthenticator,
    Caller,
    FileTokenKeyStore,
    bearer_token,
    mint_token,
    verify_token,
)
from services.citadel.cli import mint_bootstrap_token, parse_ttl
from services.citadel.errors import CaLoadError, Unauthenticated

KEY = b"k" * 32
NOW = 1_900_000_000.0


def _part(token: str, index: int) -> dict:
    raw = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))


def _with_part(token: str, index: int, value: dict) -> str:
    parts = token.split(".")
    parts[index] = base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    return ".".join(parts)


async def test_mint_then_verify() -> None:
    token = mint_token(KEY, "shop", "cart", ttl_s=3600, now=NOW)
    claims = verify_token(KEY, token, now=NOW + 3599)
    assert (claims.namespace, claims.service_account) == ("shop", "cart")
    assert claims.expires_at == int(NOW) + 3600
    assert _part(token, 0)["alg"] == "HS256"
    assert _part(token, 1)["sub"] == "system:serviceaccount:shop:cart"
    assert await BootstrapTokenAuthenticator(KEY, clock=lambda: NOW).authenticate(token) == Caller("shop", "cart")


def test_expired() -> None:
    token = mint_token(KEY, "shop", "cart", ttl_s=60, now=NOW)
    with pytest.raises(Unauthenticated, match="token expired 1s ago"):
        verify_token(KEY, token, now=NOW + 61)


def test_forged_payload_fails_the_signature() -> None:
    token = mint_token(KEY, "shop", "cart", ttl_s=60, now=NOW)
    claims = _part(token, 1)
    claims["sub"] = "system:serviceaccount:shop:admin"
    with pytest.raises(Unauthenticated, match="signature does not verify"):
        verify_token(KEY, _with_part(token, 1, claims), now=NOW)


def test_signed_with_another_key() -> None:
    token = mint_token(b"x" * 32, "shop", "cart", ttl_s=60, now=NOW)
    with pytest.raises(Unauthenticated, match="signed with another key"):
        verify_token(KEY, token, now=NOW)


def test_alg_none_is_refused() -> None:
    token = mint_token(KEY, "shop", "cart", ttl_s=60, now=NOW)
    header = _part(token, 0)
    header["alg"] = "none"
    forged = _with_part(token, 0, header).rsplit(".", 1)[0] + "."
    with pytest.raises(Unauthenticated, match="algorithm 'none' is not accepted"):
        verify_token(KEY, forged, now=NOW)


@pytest.mark.parametrize(("token", "message"), [
    ("", "not a JWT"),
    ("a.b", "not a JWT"),
    ("!!!.e30.AAAA", "header is not base64url"),
    ("e30.e30.AAAA", "algorithm None is not accepted"),
    ("x" * 5000, "longer than 4096 bytes"),
])
def test_garbage(token: str, message: str) -> None:
    with pytest.raises(Unauthenticated, match=message):
        verify_token(KEY, token, now=NOW)


def test_mint_refuses_bad_names_and_lifetimes() -> None:
    with pytest.raises(ValueError, match="namespace 'Shop!' is not"):
        mint_token(KEY, "Shop!", "cart", ttl_s=60, now=NOW)
    with pytest.raises(ValueError, match="must be positive"):
        mint_token(KEY, "shop", "cart", ttl_s=0, now=NOW)


@pytest.mark.parametrize(("metadata", "expected"), [
    ([("authorization", "Bearer abc")], "abc"),
    ([("Authorization", "bearer  abc ")], "abc"),
])
def test_bearer_token(metadata: list[tuple[str, str]], expected: str) -> None:
    assert bearer_token(metadata) == expected


@pytest.mark.parametrize(("metadata", "message"), [
    ([], "no authorization metadata"),
    ([("authorization", "Basic abc")], "is not 'Bearer <token>'"),
    ([("authorization", "Bearer ")], "is not 'Bearer <token>'"),
    ([("authorization", "Bearer a"), ("authorization", "Bearer b")], "more than one"),
])
def test_bearer_token_refusals(metadata: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(Unauthenticated, match=message):
        bearer_token(metadata)


def test_key_is_created_once_private_and_shared_with_the_cli(tmp_path: Path) -> None:
    key = FileTokenKeyStore(tmp_path).load_or_create()
    assert stat.S_IMODE((tmp_path / "token-key").stat().st_mode) == 0o600
    assert FileTokenKeyStore(tmp_path).load_or_create() == key
    token = mint_bootstrap_token(tmp_path, "shop", "cart", 600, now=NOW)
    assert verify_token(key, token, now=NOW).service_account == "cart"


def test_a_damaged_key_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "token-key").write_text("c2hvcnQ=\n")
    with pytest.raises(CaLoadError, match="holds 5 bytes, fewer than 32"):
        FileTokenKeyStore(tmp_path).load_or_create()


@pytest.mark.parametrize(("text", "seconds"), [("3600", 3600), ("90s", 90), ("30m", 1800), ("1h30m", 5400)])
def test_ttl_parsing(text: str, seconds: int) -> None:
    assert parse_ttl(text) == seconds
