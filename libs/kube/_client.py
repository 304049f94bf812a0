"""A Kubernetes API client for asyncio.

The `kubernetes` client is blocking.  Short calls (lists, discovery, TokenReview) run in a
worker thread with `asyncio.to_thread`; a watch, which can stay open for minutes, is read
by a dedicated thread of its own (`libs.kube._stream`), so it never occupies the loop's
default executor.  Every call is made with `_preload_content=False`: the client then returns
the raw urllib3 response instead of a model, which keeps objects as the JSON the server sent
and lets a watch be read chunk by chunk as it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from libs.kube._discovery import ApiGroup, parse_group_list
from libs.kube._errors import NOT_FOUND, KubeApiError, KubeConfigError, KubeError, KubeUnavailable, from_api_exception
from libs.kube._resources import MERGE_PATCH, ResourceRef, list_method, object_method

# The `kubernetes` package takes ~0.4 s to import.  This package imports it where a client is
# built or called, so a service that never talks to an API server (every one in the local
# mesh) starts without it.
if TYPE_CHECKING:
    from kubernetes import client


@dataclass(frozen=True, slots=True)
class ObjectList:
    """A list response: the objects, and the resourceVersion to watch from."""

    items: list[dict[str, Any]]
    resource_version: str


@contextlib.contextmanager
def translated(action: str) -> Iterator[None]:
    """Turn the client's and urllib3's exceptions into `KubeError`s."""
    import urllib3
    from kubernetes.client.exceptions import ApiException

    try:
        yield
    except ApiException as exc:
        raise from_api_exception(action, exc) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise KubeUnavailable(action, repr(exc)) from exc


def read_json(action: str, response: Any) -> dict[str, Any]:
    """Read a whole (non-streamed) response and give its connection back to the pool."""
    try:
        with translated(action):
            data = response.data
    finally:
        response.release_conn()
    try:
        body = json.loads(data)
    except ValueError as exc:
        raise KubeError(f"{action}: the API server answered with something other than JSON") from exc
    if not isinstance(body, dict):
        raise KubeError(f"{action}: expected a JSON object, got {type(body).__name__}")
    return body


class KubeClient:
    """One API server, one connection pool.  Build it with `connect`, close it with `close`."""

    def __init__(self, api: client.ApiClient, *, request_timeout_s: float = 30.0,
                 connect_timeout_s: float = 10.0) -> None:
        self.api_client = api
        self.request_timeout_s = request_timeout_s
        self.connect_timeout_s = connect_timeout_s

    @classmethod
    def connect(cls, kubeconfig: Path | None, *, environ: Mapping[str, str], context: str | None = None,
                request_timeout_s: float = 30.0) -> KubeClient:
        """From `kubeconfig` when given, else from the pod's service account (in-cluster)."""
        if kubeconfig is not None:
            return cls.from_kubeconfig(kubeconfig, context=context, request_timeout_s=request_timeout_s)
        return cls.in_cluster(environ=environ, request_timeout_s=request_timeout_s)

    @classmethod
    def from_kubeconfig(cls, path: Path, *, context: str | None = None,
                        request_timeout_s: float = 30.0) -> KubeClient:
        from kubernetes import client, config

        configuration = client.Configuration()
        try:
            # persist_config=False: never write refreshed credentials back into the user's file.
            config.load_kube_config(config_file=str(path), context=context,
                                    client_configuration=configuration, persist_config=False)
        except (config.ConfigException, OSError, yaml.YAMLError) as exc:
            raise KubeConfigError(f"kubeconfig {path}: {exc}") from exc
        return cls(client.ApiClient(configuration), request_timeout_s=request_timeout_s)

    @classmethod
    def in_cluster(cls, *, environ: Mapping[str, str], token_path: Path | None = None,
                   ca_path: Path | None = None, request_timeout_s: float = 30.0) -> KubeClient:
        """From the pod's service account: its token and CA at their usual paths unless given."""
        from kubernetes import client, config
        from kubernetes.config.incluster_config import (
            SERVICE_CERT_FILENAME,
            SERVICE_TOKEN_FILENAME,
            InClusterConfigLoader,
        )

        configuration = client.Configuration()
        try:
            # The loader re-reads the (projected, rotating) token file before it expires.
            InClusterConfigLoader(token_filename=str(token_path or SERVICE_TOKEN_FILENAME),
                                  cert_filename=str(ca_path or SERVICE_CERT_FILENAME),
                                  environ=environ).load_and_set(configuration)
        except (config.ConfigException, OSError) as exc:
            raise KubeConfigError(f"in-cluster configuration: {exc}") from exc
        return cls(client.ApiClient(configuration), request_timeout_s=request_timeout_s)

    @property
    def host(self) -> str:
        return str(self.api_client.configuration.host)

    def close(self) -> None:
        """Close pooled connections; watches must have been closed first."""
        self.api_client.close()

    def timeouts(self, read_s: float | None = None) -> tuple[float, float]:
        return (self.connect_timeout_s, read_s if read_s is not None else self.request_timeout_s)

    async def call(self, action: str, method: Callable[..., Any], **kwargs: Any) -> dict[str, Any]:
        """Run one generated client method in a worker thread; return the JSON body."""

        def blocking() -> dict[str, Any]:
            with translated(action):
                response = method(**kwargs, _preload_content=False, _request_timeout=self.timeouts())
            return read_json(action, response)

        return await asyncio.to_thread(blocking)

    async def list(self, ref: ResourceRef, *, namespace: str | None = None,
                   label_selector: str | None = None) -> ObjectList:
        body = await self.call(f"list {ref}", list_method(self.api_client, ref, namespace),
                               label_selector=label_selector)
        # Core lists leave apiVersion and kind off their items; fill them in so every object
        # a consumer sees is complete, whatever its group.
        item_kind = str(body.get("kind") or "").removesuffix("List")
        items = [{"apiVersion": ref.api_version, "kind": item_kind, **item} for item in body.get("items") or ()]
        return ObjectList(items, str((body.get("metadata") or {}).get("resourceVersion") or ""))

    async def get(self, ref: ResourceRef, name: str, *, namespace: str = "") -> dict[str, Any] | None:
        """One object by name, as the server sent it; None if there is no such object."""
        try:
            return await self.call(f"get {ref} {namespace}/{name}", object_method(self.api_client, ref, "read",
                                                                                    namespace), name=name)
        except KubeApiError as exc:
            if exc.status == NOT_FOUND:
                return None
            raise

    async def create(self, ref: ResourceRef, body: dict[str, Any], *, namespace: str = "") -> dict[str, Any]:
        """Create `body`; raises `AlreadyExists` if an object of its name exists."""
        name = (body.get("metadata") or {}).get("name", "")
        return await self.call(f"create {ref} {namespace}/{name}", object_method(self.api_client, ref, "create",
                                                                                   namespace), body=body)

    async def patch(self, ref: ResourceRef, name: str, body: Any, *, namespace: str = "",
                    content_type: str = MERGE_PATCH) -> dict[str, Any]:
        """Patch one object: a JSON merge patch (a dict) by default, or a JSON patch (a list of
        operations, `content_type=JSON_PATCH`); the object as changed."""
        return await self.call(f"patch {ref} {namespace}/{name}", object_method(self.api_client, ref, "patch",
                                                                                 namespace),
                               name=name, body=body, _content_type=content_type)

    def open_watch(self, ref: ResourceRef, *, namespace: str | None, resource_version: str,
                   timeout_s: int, read_timeout_s: float, label_selector: str | None = None) -> Any:
        """Start a watch (blocking; called from the watch's own thread); return the open response.

        `timeout_s` asks the server to end the stream cleanly; `read_timeout_s` is how long a
        silent connection may stay open before urllib3 gives up on it.  A resourceVersion the
        server has forgotten is not an HTTP error here: the server answers 200 and sends an
        ERROR event holding a 410 Status inside the stream."""
        with translated(f"watch {ref}"):
            return list_method(self.api_client, ref, namespace)(
                watch=True, allow_watch_bookmarks=True, resource_version=resource_version,
                timeout_seconds=timeout_s, label_selector=label_selector,
                _preload_content=False, _request_timeout=self.timeouts(read_timeout_s),
            )

    async def api_groups(self) -> dict[str, ApiGroup]:
        """Discovery: every named API group, its served versions and its preferred one."""
        from kubernetes import client

        return parse_group_list(await self.call("discover API groups", client.ApisApi(self.api_client)
                                                .get_api_versions))
