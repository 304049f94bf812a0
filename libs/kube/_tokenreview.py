"""Whose service-account token is this?  Asked of the API server with a TokenReview.

Citadel authenticates a CSR by the workload's service-account token: the API server checks
the signature, expiry, binding (pod still alive) and audience, and answers with the user the
token stands for.  Tokens are never logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from libs.kube._client import KubeClient
from libs.kube._errors import TokenRejected

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


class ServiceAccount(NamedTuple):
    namespace: str
    name: str


def parse_service_account(username: str) -> ServiceAccount | None:
    """`system:serviceaccount:<namespace>:<name>` -> (namespace, name); None for other users."""
    if not username.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    namespace, sep, name = username.removeprefix(SERVICE_ACCOUNT_PREFIX).partition(":")
    if not sep or not namespace or not name or ":" in name:
        return None
    return ServiceAccount(namespace, name)


async def review_token(kube: KubeClient, token: str, audiences: Sequence[str] = ()) -> ServiceAccount:
    """The service account `token` authenticates, for one of `audiences` (any, if empty).

    Raises `TokenRejected` if the server does not authenticate it, if it is not valid for any
    of `audiences`, or if it is some other user's; `KubeError` if the review itself failed."""
    from kubernetes import client  # where it is used: see _client.py

    wanted = tuple(audiences)
    review = client.V1TokenReview(
        api_version="authentication.k8s.io/v1", kind="TokenReview",
        spec=client.V1TokenReviewSpec(token=token, audiences=list(wanted) or None),
    )
    api = client.AuthenticationV1Api(kube.api_client)
    answer = await kube.call("review token", api.create_token_review, body=review)
    status = answer.get("status") or {}
    if not status.get("authenticated"):
        raise TokenRejected(str(status.get("error") or "the API server did not authenticate the token"),
                            audiences=wanted)
    granted = tuple(str(a) for a in status.get("audiences") or ())
    # The server checks audiences itself; checking its answer too is what the API asks of clients.
    if wanted and not set(wanted) & set(granted):
        raise TokenRejected(f"the token is valid for {list(granted)}, not for {list(wanted)}", audiences=wanted)
    username = str((status.get("user") or {}).get("username") or "")
    account = parse_service_account(username)
    if account is None:
        raise TokenRejected(f"{username!r} is not a service account", audiences=wanted)
    return account
