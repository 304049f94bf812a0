"""Telling bootstrap tokens from Kubernetes ones, and which settings need Kubernetes."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path

import pytest

from services.citadel.auth import (
    BootstrapTokenAuthenticator,
    Caller,
    CombinedAuthenticator,
    is_bootstrap_token,
    mint_token,
)
from services.citadel.errors import Unauthenticated
from services.citadel.server import settings_problem
from services.citadel.settings import CitadelSettings

KEY = b"k" * 32
NOW = 1_900_000_000.0


def _jwt(header: dict[str, str]) -> str:
    def part(value: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part({'sub': 'system:serviceaccount:shop:cart'})}.c2ln"


class Recording:
    """The TokenReview side, standing still: records what it was asked and answers one caller."""

    def __init__(self) -> None:
        self.tokens: list[str] = []

    async def authenticate(self, token: str) -> Caller:
        self.tokens.append(token)
        return Caller("kube", "reviewed")


def test_bootstrap_tokens_are_recognised_by_their_header() -> None:
    assert is_bootstrap_token(mint_token(KEY, "shop", "cart", ttl_s=60, now=NOW))
    # What a projected service-account token's header looks like.
    assert not is_bootstrap_token(_jwt({"alg": "RS256", "kid": "abc"}))
    for junk in ("", "opaque-legacy-token", "a.b", "!!.??.##", "x" * 10_000):
        assert not is_bootstrap_token(junk)


async def test_combined_sends_only_non_bootstrap_tokens_to_the_review() -> None:
    kube = Recording()
    combined = CombinedAuthenticator(BootstrapTokenAuthenticator(KEY, clock=lambda: NOW), kube)
    assert await combined.authenticate(mint_token(KEY, "shop", "cart", ttl_s=60, now=NOW)) == Caller("shop", "cart")
    service_account_token = _jwt({"alg": "RS256"})
    assert await combined.authenticate(service_account_token) == Caller("kube", "reviewed")
    # A bootstrap token signed by another key is refused locally, never reviewed.
    with pytest.raises(Unauthenticated, match="another key"):
        await combined.authenticate(mint_token(b"o" * 32, "shop", "cart", ttl_s=60, now=NOW))
    assert kube.tokens == [service_account_token]


@pytest.mark.parametrize(("changes", "problem"), [
    ({}, None),
    ({"ca_store": "kube", "kubeconfig": Path("k")}, None),
    ({"authenticators": ("bootstrap", "kube"), "kube_in_cluster": True}, None),
    ({"ca_store": "vault"}, "ca_store 'vault' is not one of file, kube"),
    ({"authenticators": ("oidc",)}, "must be some of bootstrap, kube"),
    ({"authenticators": ()}, "must be some of bootstrap, kube"),
    ({"ca_store": "kube", "authenticators": ("kube",)}, "ca_store=kube and authenticators=kube need kubeconfig"),
    ({"ca_store": "kube", "kubeconfig": Path("k"), "cacerts_dir": Path("c")}, "choose one"),
    ({"authenticators": ("kube",), "kubeconfig": Path("k"), "token_audiences": ()}, "token_audiences is empty"),
    ({"root_cert_configmaps": True, "webhook_ca_bundles": ("mutating/istio-sidecar-injector",),
      "kube_in_cluster": True}, None),
    ({"root_cert_configmaps": True}, "root_cert_configmaps need kubeconfig"),
    ({"webhook_ca_bundles": ("mutating/x",)}, "webhook_ca_bundles need kubeconfig"),
    ({"webhook_ca_bundles": ("x",), "kubeconfig": Path("k")}, "'x' is not mutating/<name> or validating/<name>"),
])
def test_settings_problems(changes: dict[str, object], problem: str | None) -> None:
    found = settings_problem(replace(CitadelSettings(), **changes))  # type: ignore[arg-type]
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found
