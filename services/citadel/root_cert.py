"""Citadel's root where Kubernetes needs it, kept there as Istio's istiod keeps it.

- The ConfigMap `istio-ca-root-cert` (key `root-cert.pem`, labelled `istio.io/config=true`)
  in every namespace but Kubernetes' own: injected proxies, pilot and the injector mount it
  to check citadel's TLS certificate (Istio's namespace controller).  A new namespace gets
  it at once; one edited or deleted by hand is put back.  Every namespace, not only the
  opted-in ones: a pod can ask for a sidecar itself (`sidecar.istio.io/inject: "true"`) in
  any namespace, and its sidecar needs the root there too.
- The `caBundle` of every webhook of the admission webhook configurations named in
  `--webhook-ca-bundles` (the injector's), so the API server trusts the serving
  certificates citadel signs for them (Istio's webhook controller patches its own).

Each is level-triggered: whatever event arrives, the object is compared with what it should
be and written only if it differs, so a replayed or relisted event costs a comparison, never
a write.  A failure the API server reports (other than a namespace going away) ends the
loop with the error, and the supervisor restarts it with backoff.
"""

from __future__ import annotations

import base64
import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import structlog

from libs.kube import (
    JSON_PATCH,
    AlreadyExists,
    KubeApiError,
    KubeClient,
    ResourceRef,
    Synced,
    WatchEvent,
    WatchSettings,
    watch_resources,
)

log = structlog.get_logger(__name__)

ROOT_CERT_CONFIGMAP = "istio-ca-root-cert"
ROOT_CERT_KEY = "root-cert.pem"
LABELS = {"istio.io/config": "true"}
# Kubernetes' own namespaces never run mesh workloads (the injector never injects there).
KUBERNETES_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})
NAMESPACES = ResourceRef("", "v1", "namespaces", namespaced=False)
CONFIGMAPS = ResourceRef("", "v1", "configmaps")
WEBHOOK_KINDS = {
    "mutating": ResourceRef("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", namespaced=False),
    "validating": ResourceRef("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations",
                              namespaced=False),
}
# A namespace being deleted (403 "is being terminated") or already gone (404).
_NAMESPACE_GONE = (403, 404)
# A JSON patch whose resourceVersion test failed (422), or a write that lost a race (409):
# the informer brings the newer object, and it is compared again.
_STALE = (409, 422)


@dataclass(frozen=True)
class WebhookConfiguration:
    kind: str  # "mutating" or "validating"
    name: str

    @property
    def ref(self) -> ResourceRef:
        return WEBHOOK_KINDS[self.kind]


def parse_webhook_configurations(entries: Iterable[str]) -> tuple[WebhookConfiguration, ...]:
    """`mutating/<name>` and `validating/<name>` entries; a ValueError names a bad one."""
    found = []
    for entry in entries:
        kind, _, name = entry.partition("/")
        if kind not in WEBHOOK_KINDS or not name:
            raise ValueError(f"webhook_ca_bundles entry {entry!r} is not mutating/<name> or validating/<name>")
        found.append(WebhookConfiguration(kind, name))
    return tuple(found)


def wants_root_cert(namespace: dict[str, Any]) -> bool:
    name = (namespace.get("metadata") or {}).get("name", "")
    phase = (namespace.get("status") or {}).get("phase")
    return name not in KUBERNETES_NAMESPACES and phase != "Terminating"


def root_cert_configmap(namespace: str, root_pem: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": ROOT_CERT_CONFIGMAP, "namespace": namespace, "labels": dict(LABELS)},
            "data": {ROOT_CERT_KEY: root_pem}}


def configmap_is_current(configmap: dict[str, Any], root_pem: str) -> bool:
    labels = (configmap.get("metadata") or {}).get("labels") or {}
    return (configmap.get("data") or {}).get(ROOT_CERT_KEY) == root_pem and all(
        labels.get(k) == v for k, v in LABELS.items())


def ca_bundle_patch(configuration: dict[str, Any], ca_bundle: str) -> list[dict[str, Any]]:
    """The JSON patch setting every webhook's caBundle to `ca_bundle` (base64 PEM), guarded by
    the object's resourceVersion; empty when every webhook has it already."""
    operations: list[dict[str, Any]] = [
        {"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": ca_bundle}
        for i, webhook in enumerate(configuration.get("webhooks") or [])
        if (webhook.get("clientConfig") or {}).get("caBundle") != ca_bundle]
    if not operations:
        return []
    version = (configuration.get("metadata") or {}).get("resourceVersion", "")
    return [{"op": "test", "path": "/metadata/resourceVersion", "value": version}, *operations]


class RootCertPublisher:
    """The loops that put citadel's root (the trust bundle, PEM) where Kubernetes needs it."""

    def __init__(self, kube: KubeClient, root_pem: str, *, configmaps: bool,
                 webhooks: tuple[WebhookConfiguration, ...] = (), watch: WatchSettings | None = None) -> None:
        self.kube = kube
        self.root_pem = root_pem
        self.ca_bundle = base64.b64encode(root_pem.encode()).decode()
        self.configmaps = configmaps
        self.webhooks = webhooks
        self.watch = watch or WatchSettings()

    async def publish(self, root_pem: str) -> None:
        """A new trust bundle (a root rotation's step): write it everywhere now; the loops
        keep it there from then on."""
        if root_pem == self.root_pem:
            return
        self.root_pem = root_pem
        self.ca_bundle = base64.b64encode(root_pem.encode()).decode()
        if self.configmaps:
            for item in (await self.kube.list(NAMESPACES)).items:
                if wants_root_cert(item):
                    await self.ensure_configmap(item["metadata"]["name"])
        for webhook in self.webhooks:
            configuration = await self.kube.get(webhook.ref, webhook.name)
            operations = ca_bundle_patch(configuration, self.ca_bundle) if configuration is not None else []
            if operations:
                await self.kube.patch(webhook.ref, webhook.name, operations, content_type=JSON_PATCH)
        log.info("trust bundle written to Kubernetes", roots=root_pem.count("BEGIN CERTIFICATE"),
                 configmaps=self.configmaps, webhooks=[w.name for w in self.webhooks])

    def tasks(self) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        """(name, loop) for each informer to run under the supervisor."""
        found: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        if self.configmaps:
            found += [("root-cert-namespaces", self.follow_namespaces),
                      ("root-cert-configmaps", self.follow_configmaps)]
        for kind in sorted({w.kind for w in self.webhooks}):
            found.append((f"ca-bundle-{kind}", functools.partial(
                self.follow_webhooks, kind, {w.name for w in self.webhooks if w.kind == kind})))
        return found

    async def _events(self, ref: ResourceRef, handle: Callable[[WatchEvent], Awaitable[None]], *,
                      label_selector: str | None = None) -> None:
        async with contextlib.aclosing(watch_resources(self.kube, ref, label_selector=label_selector,
                                                       settings=self.watch)) as events:
            async for event in events:
                if not isinstance(event, Synced):
                    await handle(event)

    # -- istio-ca-root-cert -------------------------------------------------------------------

    async def follow_namespaces(self) -> None:
        async def handle(event: WatchEvent) -> None:
            if event.type != "DELETED" and wants_root_cert(event.object):
                await self.ensure_configmap(event.name)

        await self._events(NAMESPACES, handle)

    async def follow_configmaps(self) -> None:
        async def handle(event: WatchEvent) -> None:
            if event.name != ROOT_CERT_CONFIGMAP or event.namespace in KUBERNETES_NAMESPACES:
                return
            if event.type == "DELETED" or not configmap_is_current(event.object, self.root_pem):
                await self.ensure_configmap(event.namespace)

        await self._events(CONFIGMAPS, handle, label_selector=",".join(f"{k}={v}" for k, v in LABELS.items()))

    async def ensure_configmap(self, namespace: str) -> None:
        """Create or correct the ConfigMap in `namespace`; a namespace going away is skipped."""
        try:
            current = await self.kube.get(CONFIGMAPS, ROOT_CERT_CONFIGMAP, namespace=namespace)
            if current is not None and configmap_is_current(current, self.root_pem):
                return
            if current is None:
                try:
                    await self.kube.create(CONFIGMAPS, root_cert_configmap(namespace, self.root_pem),
                                           namespace=namespace)
                    log.info("root certificate published", namespace=namespace, configmap=ROOT_CERT_CONFIGMAP)
                    return
                except AlreadyExists:
                    pass  # created meanwhile: correct it below
            await self.kube.patch(CONFIGMAPS, ROOT_CERT_CONFIGMAP, {"metadata": {"labels": LABELS},
                                                                    "data": {ROOT_CERT_KEY: self.root_pem}},
                                  namespace=namespace)
            log.info("root certificate restored", namespace=namespace, configmap=ROOT_CERT_CONFIGMAP)
        except KubeApiError as exc:
            if exc.status not in _NAMESPACE_GONE:
                raise
            log.info("namespace going away; no root certificate written", namespace=namespace, error=str(exc))

    # -- webhook caBundles ----------------------------------------------------------------------

    async def follow_webhooks(self, kind: str, names: set[str]) -> None:
        ref = WEBHOOK_KINDS[kind]

        async def handle(event: WatchEvent) -> None:
            if event.type == "DELETED" or event.name not in names:
                return
            operations = ca_bundle_patch(event.object, self.ca_bundle)
            if not operations:
                return
            try:
                await self.kube.patch(ref, event.name, operations, content_type=JSON_PATCH)
            except KubeApiError as exc:
                if exc.status not in _STALE:
                    raise
                log.info("webhook configuration changed meanwhile; comparing again on its next version",
                         configuration=event.name, kind=kind)
                return
            log.info("webhook caBundle set to citadel's root", configuration=event.name, kind=kind,
                     webhooks=len(operations) - 1)

        await self._events(ref, handle)
