"""The fake API server's answers that are not about stored objects: discovery, TokenReview.

Discovery as kubectl reads it: `/api`, `/apis` (as APIVersions and APIGroupList, or, when the
client asks for it, as one aggregated APIGroupDiscoveryList, apidiscovery.k8s.io v2 or v2beta1),
and `/api/v1`, `/apis/<group>/<version>` as APIResourceLists (verbs, kinds, short names,
categories, scope), from which `kubectl get svc`, `vs` or `all` find their resources.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from libs.protowire import encode_varint
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


VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


def _in_group_version(types: Iterable[ResourceType], group: str, version: str) -> list[ResourceType]:
    return sorted((t for t in types if t.group == group and version in t.versions), key=lambda t: t.plural)


def api_resource_list(types: Iterable[ResourceType], group: str, version: str) -> dict[str, Any] | None:
    """GET /api/v1 or /apis/<group>/<version>: the resources served there (None: not served)."""
    served = _in_group_version(types, group, version)
    if not served:
        return None
    resources = []
    for rtype in served:
        resource: dict[str, Any] = {"name": rtype.plural, "singularName": rtype.kind.lower(),
                                    "namespaced": rtype.namespaced, "kind": rtype.kind, "verbs": list(VERBS)}
        if rtype.short_names:
            resource["shortNames"] = list(rtype.short_names)
        if rtype.categories:
            resource["categories"] = list(rtype.categories)
        resources.append(resource)
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources}


def aggregated_discovery(types: Iterable[ResourceType], *, core: bool, version: str) -> dict[str, Any]:
    """GET /api (`core`) or /apis for a client that accepts `apidiscovery.k8s.io/<version>`:
    every group, its versions most preferred first, and their resources, in one document."""
    types = list(types)
    groups = [""] if core else sorted({t.group for t in types if t.group})
    items = []
    for group in groups:
        versions = by_priority({v for t in types if t.group == group for v in t.versions})
        entries = []
        for served in versions:
            resources = [{"resource": t.plural, "responseKind": {"group": group, "version": served, "kind": t.kind},
                          "scope": "Namespaced" if t.namespaced else "Cluster", "singularResource": t.kind.lower(),
                          "verbs": list(VERBS), "shortNames": list(t.short_names), "categories": list(t.categories)}
                         for t in _in_group_version(types, group, served)]
            entries.append({"version": served, "resources": resources, "freshness": "Current"})
        items.append({"metadata": {"name": group, "creationTimestamp": None}, "versions": entries})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}", "metadata": {},
            "items": items}


def version_info(git_version: str) -> dict[str, Any]:
    """GET /version, as a real server of `git_version` (e.g. v1.30.0) answers."""
    major, minor = git_version.lstrip("v").split(".")[:2]
    return {"major": major, "minor": minor, "gitVersion": git_version, "gitCommit": "0" * 40,
            "gitTreeState": "clean", "buildDate": "2024-04-17T17:27:09Z", "goVersion": "go1.22.2",
            "compiler": "gc", "platform": "linux/amd64"}


# -- OpenAPI ------------------------------------------------------------------------------------
# kubectl fetches /openapi/v2 (as protobuf) to validate what it sends and to compute apply's
# patches; /openapi/v3 to ask whether the server validates fields itself.  The fake publishes no
# schemas: v2 is a valid, empty document (kubectl then skips client-side validation of every
# kind and computes strategic merge patches from its built-in types), v3 lists no group
# versions (so kubectl does not send `fieldValidation=Strict` expecting the server to check).

OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"  # as clients ask
OPENAPI_V2_PROTOBUF_SERVED = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"  # parses as MIME


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (a string or an embedded message)."""
    return encode_varint(number << 3 | 2) + encode_varint(len(payload)) + payload


def openapi_v2(git_version: str, *, protobuf: bool) -> bytes:
    """GET /openapi/v2: gnostic's openapi_v2.Document {swagger, info, paths: {}, definitions: {}}."""
    if protobuf:
        info = _field(1, b"Kubernetes") + _field(2, git_version.encode())
        return _field(1, b"2.0") + _field(2, info) + _field(8, b"") + _field(9, b"")
    return json.dumps({"swagger": "2.0", "info": {"title": "Kubernetes", "version": git_version},
                       "paths": {}, "definitions": {}}).encode()


OPENAPI_V3_INDEX: dict[str, Any] = {"paths": {}}


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
