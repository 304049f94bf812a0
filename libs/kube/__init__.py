"""Kubernetes for Mizzen: an asyncio-friendly client, informer-style watches, TokenReview.

Direct use of `kubernetes` stays inside this package (ruff's banned-api enforces it).
`KubeClient.connect()` builds a client from a kubeconfig or the pod's service account;
`watch_resources()` lists and watches one resource type and recovers from dropped
connections and expired resourceVersions on its own; `review_token()` asks who a
service-account token belongs to.
"""

from libs.kube._client import KubeClient, ObjectList
from libs.kube._discovery import ApiGroup, choose_version, version_priority
from libs.kube._errors import (
    AlreadyExists,
    KubeApiError,
    KubeConfigError,
    KubeError,
    KubeUnavailable,
    ResourceExpired,
    TokenRejected,
)
from libs.kube._events import EventType, ObjectKey, Synced, WatchEvent
from libs.kube._informer import WatchSettings, watch_resources
from libs.kube._resources import JSON_PATCH, MERGE_PATCH, ResourceRef
from libs.kube._tokenreview import ServiceAccount, parse_service_account, review_token

__all__ = [
    "JSON_PATCH",
    "MERGE_PATCH",
    "AlreadyExists",
    "ApiGroup",
    "EventType",
    "KubeApiError",
    "KubeClient",
    "KubeConfigError",
    "KubeError",
    "KubeUnavailable",
    "ObjectKey",
    "ObjectList",
    "ResourceExpired",
    "ResourceRef",
    "ServiceAccount",
    "Synced",
    "TokenRejected",
    "WatchEvent",
    "WatchSettings",
    "choose_version",
    "parse_service_account",
    "review_token",
    "version_priority",
    "watch_resources",
]
