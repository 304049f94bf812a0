"""What injection reads from the mesh config: the trust domain and `defaultConfig` (Istio's
ProxyConfig), which a pod's `proxy.istio.io/config` annotation overrides field by field.

The webhook gets the mesh config validated by galley (the `MeshConfig` in mesh-config);
kube-inject reads a file, validated here by the same rules.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from libs.config import DocumentError, Origin, ResourceInvalid, UnsupportedKind, parse_resource
from libs.config.schema import normalise
from libs.config.schema.mesh import PROXY_CONFIG
from libs.inject._errors import InvalidConfig, InvalidPod

# The ProxyConfig fields injection acts on, with Istio's defaults where the mesh sets none.
DEFAULT_DISCOVERY_ADDRESS = "istio-pilot.istio-system.svc:15010"
DEFAULT_STATUS_PORT = 15020
SUPPORTED_INTERCEPTION = "REDIRECT"


@dataclass(frozen=True)
class MeshSettings:
    trust_domain: str = "cluster.local"
    # `defaultConfig`, as validated and normalised (JSON names, canonical durations).
    default_config: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> MeshSettings:
        """From a validated MeshConfig spec (the `mesh` key of the `istio` ConfigMap)."""
        return cls(trust_domain=str(spec.get("trustDomain") or "cluster.local"),
                   default_config=dict(spec.get("defaultConfig") or {}))


def load_mesh_config(text: str, source: str, *, namespace: str = "istio-system") -> MeshSettings:
    """A mesh config file, as istioctl's --meshConfigFile takes it: the `mesh` YAML itself, or
    the whole `istio` ConfigMap.  Checked with galley's rules, errors by field."""
    try:
        body = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        raise InvalidConfig(source, "", f"is not YAML: {exc}") from exc
    if isinstance(body, dict) and body.get("kind") == "ConfigMap":
        configmap = body
    else:
        configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": namespace},
                     "data": {"mesh": text}}
    try:
        resource = parse_resource(configmap, Origin(source), default_namespace=namespace)
    except ResourceInvalid as exc:
        raise InvalidConfig(source, "", "; ".join(str(error) for error in exc.errors)) from exc
    except (DocumentError, UnsupportedKind) as exc:
        raise InvalidConfig(source, "", f"is not a mesh config or the `istio` ConfigMap: {exc}") from exc
    return MeshSettings.from_spec(resource.spec)


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` over `base` as Istio merges a ProxyConfig: objects and maps (proxyMetadata)
    merge key by key, everything else is replaced.  (Protobuf would append repeated fields;
    replacing them is what a user editing one annotation expects.)"""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _problem(config: Mapping[str, Any]) -> tuple[str, str] | None:
    """(field, reason) for a ProxyConfig value the schema's types let through but injection
    cannot use, or None."""
    concurrency = config.get("concurrency")
    if concurrency is not None and concurrency < 0:
        return "concurrency", f"{concurrency} must not be negative (0: size Envoy to the CPU)"
    status_port = config.get("statusPort")
    if status_port is not None and not 1 <= status_port <= 65535:
        return "statusPort", f"{status_port} is not a port number (1-65535)"
    address = str(config.get("discoveryAddress", DEFAULT_DISCOVERY_ADDRESS))
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return "discoveryAddress", f"{address!r} is not host:port"
    mode = config.get("interceptionMode", SUPPORTED_INTERCEPTION)
    if mode != SUPPORTED_INTERCEPTION:
        return "interceptionMode", f"{mode} is not supported; Mizzen's sidecars capture with iptables " \
                                   f"{SUPPORTED_INTERCEPTION}"
    return None


def proxy_config(mesh: MeshSettings, annotation: str | None, path: str) -> dict[str, Any]:
    """The pod's ProxyConfig: the mesh's defaultConfig with the annotation (YAML) over it."""
    overrides: dict[str, Any] = {}
    if annotation is not None:
        try:
            document = yaml.safe_load(annotation) if annotation.strip() else {}
        except yaml.YAMLError as exc:
            raise InvalidPod(path, f"is not YAML: {exc}") from exc
        errors: list[Any] = []
        overrides = normalise(document if document is not None else {}, PROXY_CONFIG, path, errors)
        if errors:
            raise InvalidPod(errors[0].path, errors[0].reason)
    problem = _problem(mesh.default_config)
    if problem:
        raise InvalidConfig("mesh config", f"defaultConfig.{problem[0]}", problem[1])
    merged = merge(mesh.default_config, overrides)
    problem = _problem(merged)
    if problem:
        raise InvalidPod(f"{path}.{problem[0]}", problem[1])
    return merged
