"""The injection config, in the shape of Istio's `istio-sidecar-injector` ConfigMap.

Its `config` key is YAML: `policy` (enabled or disabled), `neverInjectSelector`,
`alwaysInjectSelector`, `injectedAnnotations`.  Its `values` key is Istio's Helm values as
JSON; the fields Mizzen reads are the images (`global.hub`, `global.tag`,
`global.proxy.image`, `global.proxy_init.image`, `global.imagePullPolicy`,
`global.imagePullSecrets`), the proxy's resources and readiness probe, the cluster domain,
citadel's address (`global.caAddress`), the cluster id, `revision` and
`sidecarInjectorWebhook.rewriteAppHTTPProbe`.  Every other value is Istio's and ignored.
Istio's Go `template`s are not run: Mizzen renders its own pod shape (`_template`), so a
ConfigMap exported from Istio loads, with a warning saying its templates are unused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from libs.config.label_selectors import LabelSelector, SelectorError, parse_selector
from libs.inject._errors import InvalidConfig
from libs.inject._quantity import parse_quantity

POLICIES = ("enabled", "disabled")
# Keys of Istio's `config` that hold Go templates: accepted, not run.
_TEMPLATE_KEYS = ("template", "templates", "defaultTemplates", "aliases")
_CONFIG_KEYS = ("policy", "neverInjectSelector", "alwaysInjectSelector", "injectedAnnotations", *_TEMPLATE_KEYS)
# Istio's values.global.proxy.resources.
DEFAULT_RESOURCES: Mapping[str, Mapping[str, str]] = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"cpu": "2000m", "memory": "1024Mi"},
}


@dataclass(frozen=True)
class Values:
    """What the sidecar is made of, from Istio's values."""

    hub: str = "docker.io/mizzen"
    tag: str = "latest"
    # A name (joined to hub and tag) or, containing a "/", a whole image reference.
    proxy_image: str = "mizzen"
    proxy_init_image: str = "mizzen"
    image_pull_policy: str = ""
    image_pull_secrets: tuple[str, ...] = ()
    proxy_resources: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: DEFAULT_RESOURCES)
    cluster_domain: str = "cluster.local"
    # Where agents send CSRs: Istio 1.1's citadel Service and port.
    ca_address: str = "istio-citadel.istio-system.svc:8060"
    cluster_id: str = "Kubernetes"
    readiness_initial_delay_s: int = 1
    readiness_period_s: int = 2
    readiness_failure_threshold: int = 30
    rewrite_app_probes: bool = True
    # The control-plane revision this injector serves ("" is Istio's default revision).
    revision: str = ""

    def image(self, name: str) -> str:
        """Istio's rule: a name with a "/" is a full reference, else `hub/name:tag`."""
        return name if "/" in name else f"{self.hub}/{name}:{self.tag}"

    @property
    def revision_name(self) -> str:
        return self.revision or "default"


@dataclass(frozen=True)
class InjectionConfig:
    policy: str = "enabled"
    never_inject: tuple[LabelSelector, ...] = ()
    always_inject: tuple[LabelSelector, ...] = ()
    injected_annotations: Mapping[str, str] = field(default_factory=dict)
    values: Values = field(default_factory=Values)
    # What was accepted but not used (Istio's templates), for the loader to report.
    warnings: tuple[str, ...] = ()


class _Reader:
    """Typed reads from a parsed document, each error naming its dotted path."""

    def __init__(self, source: str, root: str, body: Any) -> None:
        self.source = source
        self.root = root
        self.body = body if body is not None else {}
        if not isinstance(self.body, dict):
            raise InvalidConfig(source, root, "must be a YAML or JSON object")

    def fail(self, path: str, reason: str) -> InvalidConfig:
        return InvalidConfig(self.source, f"{self.root}.{path}", reason)

    def get(self, path: str) -> Any:
        node: Any = self.body
        for part in path.split("."):
            if not isinstance(node, dict):
                raise self.fail(path, "is inside something that is not an object")
            node = node.get(part)
            if node is None:
                return None
        return node

    def text(self, path: str, default: str) -> str:
        value = self.get(path)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(path, "must be a string")
        # A tag written as 1.40 in YAML is a number; the image wants its text.
        return str(value)

    def number(self, path: str, default: int) -> int:
        value = self.get(path)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(path, "must be a non-negative integer")
        return value

    def flag(self, path: str, default: bool) -> bool:
        value = self.get(path)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(path, "must be true or false")
        return value


def _pull_secrets(reader: _Reader) -> tuple[str, ...]:
    secrets = reader.get("global.imagePullSecrets") or []
    if not isinstance(secrets, list):
        raise reader.fail("global.imagePullSecrets", "must be a list of secret names")
    names: list[str] = []
    for i, secret in enumerate(secrets):
        # Istio's values take names; a Kubernetes-style {name: ...} is accepted too.
        name = secret.get("name") if isinstance(secret, dict) else secret
        if not isinstance(name, str) or not name:
            raise reader.fail(f"global.imagePullSecrets[{i}]", "must be a secret name")
        names.append(name)
    return tuple(names)


def _resources(reader: _Reader, path: str) -> Mapping[str, Mapping[str, str]]:
    resources = reader.get(path)
    if resources is None:
        return DEFAULT_RESOURCES
    if not isinstance(resources, dict) or set(resources) - {"requests", "limits"}:
        raise reader.fail(path, "must be an object with requests and limits")
    out: dict[str, dict[str, str]] = {}
    for kind, amounts in resources.items():
        if amounts is None:
            continue
        if not isinstance(amounts, dict):
            raise reader.fail(f"{path}.{kind}", "must map a resource (cpu, memory) to a quantity")
        for resource, amount in amounts.items():
            try:
                parse_quantity(str(amount))
            except ValueError as exc:
                raise reader.fail(f"{path}.{kind}.{resource}", str(exc)) from exc
        out[kind] = {str(resource): str(amount) for resource, amount in amounts.items()}
    return out


def parse_values(body: Any, source: str) -> Values:
    reader = _Reader(source, "values", body)
    defaults = Values()
    values = Values(
        hub=reader.text("global.hub", defaults.hub),
        tag=reader.text("global.tag", defaults.tag),
        proxy_image=reader.text("global.proxy.image", defaults.proxy_image),
        proxy_init_image=reader.text("global.proxy_init.image", defaults.proxy_init_image),
        image_pull_policy=reader.text("global.imagePullPolicy", defaults.image_pull_policy),
        image_pull_secrets=_pull_secrets(reader),
        proxy_resources=_resources(reader, "global.proxy.resources"),
        cluster_domain=reader.text("global.proxy.clusterDomain", defaults.cluster_domain),
        ca_address=reader.text("global.caAddress", defaults.ca_address),
        cluster_id=reader.text("global.multiCluster.clusterName", defaults.cluster_id) or defaults.cluster_id,
        readiness_initial_delay_s=reader.number("global.proxy.readinessInitialDelaySeconds",
                                                defaults.readiness_initial_delay_s),
        readiness_period_s=reader.number("global.proxy.readinessPeriodSeconds", defaults.readiness_period_s),
        readiness_failure_threshold=reader.number("global.proxy.readinessFailureThreshold",
                                                  defaults.readiness_failure_threshold),
        rewrite_app_probes=reader.flag("sidecarInjectorWebhook.rewriteAppHTTPProbe", defaults.rewrite_app_probes),
        revision=reader.text("revision", defaults.revision),
    )
    if values.image_pull_policy not in ("", "Always", "IfNotPresent", "Never"):
        raise reader.fail("global.imagePullPolicy", f"{values.image_pull_policy!r} is not Always, IfNotPresent "
                                                    "or Never")
    for path, image in (("global.proxy.image", values.proxy_image), ("global.proxy_init.image",
                                                                       values.proxy_init_image)):
        if not image.strip():
            raise reader.fail(path, "must name an image")
    return values


def _selectors(reader: _Reader, key: str) -> tuple[LabelSelector, ...]:
    entries = reader.body.get(key) or []
    if not isinstance(entries, list):
        raise reader.fail(key, "must be a list of label selectors")
    try:
        return tuple(parse_selector(entry, f"{key}[{i}]") for i, entry in enumerate(entries))
    except SelectorError as exc:
        raise reader.fail(exc.path, exc.reason) from exc


def parse_config(body: Any, values: Values, source: str) -> InjectionConfig:
    reader = _Reader(source, "config", body)
    policy = reader.text("policy", "enabled")
    if policy not in POLICIES:
        raise reader.fail("policy", f"{policy!r} is not enabled or disabled")
    annotations = reader.body.get("injectedAnnotations") or {}
    if not isinstance(annotations, dict) or not all(isinstance(v, str) for v in annotations.values()):
        raise reader.fail("injectedAnnotations", "must map annotation names to string values")
    warnings = [f"{source}: config.{key} holds Istio templates; Mizzen renders its own sidecar and ignores it"
                for key in _TEMPLATE_KEYS if reader.body.get(key)]
    warnings += [f"{source}: config.{key} is not a field of the injection config; ignored"
                 for key in sorted(set(reader.body) - set(_CONFIG_KEYS))]
    return InjectionConfig(policy=policy, never_inject=_selectors(reader, "neverInjectSelector"),
                           always_inject=_selectors(reader, "alwaysInjectSelector"),
                           injected_annotations=dict(annotations), values=values, warnings=tuple(warnings))


def _document(text: str | None, source: str, key: str) -> Any:
    if text is None or not text.strip():
        return {}
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidConfig(source, key, f"is not YAML or JSON: {exc}") from exc


def load_injection_config(config_text: str | None, values_text: str | None, *,
                          source: str = "injection config") -> InjectionConfig:
    """The ConfigMap's `config` and `values` entries (either may be missing: defaults)."""
    values = parse_values(_document(values_text, source, "values"), source)
    return parse_config(_document(config_text, source, "config"), values, source)


def injection_config_from_configmap(body: Mapping[str, Any], source: str) -> InjectionConfig:
    """The `istio-sidecar-injector` ConfigMap as a whole (its `config` and `values` keys)."""
    data = body.get("data") or {}
    if not isinstance(data, dict):
        raise InvalidConfig(source, "data", "must map keys to strings")
    for key in ("config", "values"):
        if key in data and not isinstance(data[key], str):
            raise InvalidConfig(source, f"data.{key}", "must be a string holding YAML or JSON")
    return load_injection_config(data.get("config"), data.get("values"), source=source)
