"""The fake API server's answers that are not about stored objects: discovery, TokenReview."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tests.harness.kube_resources import ResourceType, by_priority


@dataclass(frozen=True)
class TokenInfo:
    """What TokenReview says about one token the test registered."""

    namespace: str
    service_account: str
    audiences: tuple[str, ...]
    authenticated: bool


def api_group_list(types: Iterable[ResourceType]) -> dict[str, Any]:
    """GET /apis: every named group, its versions most preferred first, and the preferred one."""
    served: dict[str, set[str]] = {}
    for rtype in types:
        if rtype.group:
            served.setdefault(rtype.group, set()).update(rtype.versions)
    groups = []
    for group, versions in sorted(served.items()):
        ordered = [{"groupVersion": f"{group}/{v}", "version": v} for v in by_priority(versions)]
        groups.append({"name": group, "versions": ordered, "preferredVersion": ordered[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def token_review(tokens: Mapping[str, TokenInfo], review: Any) -> dict[str, Any]:
    """POST /apis/authentication.k8s.io/v1/tokenreviews, answered as the API server does:
    unknown, invalid or wrong-audience tokens are `authenticated: false` with an error."""
    spec = review.get("spec") or {}
    wanted = tuple(spec.get("audiences") or ())
    info = tokens.get(spec.get("token", ""))
    if info is None or not info.authenticated:
        result: dict[str, Any] = {"authenticated": False, "error": "[invalid bearer token, token lookup failed]"}
    elif wanted and not set(wanted) & set(info.audiences):
        result = {"authenticated": False, "error": f"[invalid bearer token, token audiences "
                  f"{list(info.audiences)} is invalid for the target audiences {list(wanted)}]"}
    else:
        ns, sa = info.namespace, info.service_account
        result = {
            "authenticated": True,
            "audiences": [a for a in info.audiences if a in wanted] if wanted else list(info.audiences),
            "user": {"username": f"system:serviceaccount:{ns}:{sa}", "uid": f"uid-{ns}-{sa}",
                     "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]},
        }
    return {**review, "status": result}
