"""From a YAML/JSON document to a validated `Resource`, or an error saying why not."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from libs.config._errors import DocumentError, FieldError, Origin, ResourceInvalid, UnsupportedKind
from libs.config._kinds import lookup
from libs.config._loader import DEFAULT_LIMITS, LoadLimits, load_documents
from libs.config._mesh import configmap_to_resource
from libs.config._resource import Resource
from libs.config.schema import normalise
from libs.config.validation import Checker
from libs.config.validation.labels import K8S_DNS1123_LABEL, K8S_DNS1123_SUBDOMAIN, kubernetes_labels

_TOP_LEVEL = {"apiVersion", "kind", "metadata", "spec", "status"}
# Metadata that kubectl and the API server add; accepted and dropped.
_SERVER_METADATA = {
    "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink",
    "ownerReferences", "finalizers", "deletionTimestamp", "deletionGracePeriodSeconds", "generateName",
}


def _identity(body: dict[str, Any], default_namespace: str) -> tuple[str, str, str, str]:
    api_version = body.get("apiVersion")
    kind = body.get("kind")
    metadata = body.get("metadata")
    name = namespace = ""
    if isinstance(metadata, dict):
        found_name, found_namespace = metadata.get("name"), metadata.get("namespace")
        name = found_name if isinstance(found_name, str) else ""
        namespace = found_namespace if isinstance(found_namespace, str) else ""
    return (api_version if isinstance(api_version, str) else "", kind if isinstance(kind, str) else "",
            namespace or default_namespace, name)


def parse_resource(body: Any, origin: Origin, *, default_namespace: str = "default") -> Resource:
    """Validate one document; raise `DocumentError`, `UnsupportedKind` or `ResourceInvalid`."""
    if not isinstance(body, dict):
        raise DocumentError(origin, f"a resource must be a mapping, not {type(body).__name__}")
    api_version, kind, namespace, name = _identity(body, default_namespace)
    if not api_version or not kind:
        raise DocumentError(origin, "apiVersion and kind are required")
    if (api_version, kind) == ("v1", "ConfigMap"):
        body = configmap_to_resource(body, origin, namespace, name)
        kind = body["kind"]
    info = lookup(api_version, kind)
    if info is None:
        raise UnsupportedKind(origin, api_version, kind, namespace, name or "<unnamed>")
    problems: list[FieldError] = []
    for key in body:
        if key not in _TOP_LEVEL:
            problems.append(FieldError(str(key), "unknown top-level field"))
    metadata = body.get("metadata")
    resource_labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    check = Checker(namespace, name)
    if not isinstance(metadata, dict):
        problems.append(FieldError("metadata", "metadata with a name is required"))
    else:
        if not name:
            problems.append(FieldError("metadata.name", "a name is required"))
        elif len(name) > 253 or not K8S_DNS1123_SUBDOMAIN.match(name):
            problems.append(FieldError("metadata.name", f"{name!r} is not a DNS-1123 subdomain"))
        if len(namespace) > 63 or not K8S_DNS1123_LABEL.match(namespace):
            problems.append(FieldError("metadata.namespace", f"{namespace!r} is not a DNS-1123 label"))
        for key in ("labels", "annotations"):
            value = metadata.get(key)
            if value is None:
                continue
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                problems.append(FieldError(f"metadata.{key}", "must be a map of strings to strings"))
                continue
            if key == "labels":
                kubernetes_labels(check, "metadata.labels", value)
                resource_labels = dict(value)
            else:
                annotations = dict(value)
                check.annotations = annotations
        for key in metadata:
            if key not in ("name", "namespace", "labels", "annotations") and key not in _SERVER_METADATA:
                problems.append(FieldError(f"metadata.{key}", "unknown metadata field"))
    spec_body = body.get("spec")
    if spec_body is None:
        spec_body = {}
    spec = normalise(spec_body, info.schema, info.spec_path, problems)
    if not any(not p.warning for p in problems):
        # Semantic rules assume the schema's shapes, so they run only on well-typed specs.
        info.validate(spec, check)
    problems.extend(check.problems)
    if any(not p.warning for p in problems):
        raise ResourceInvalid(kind, namespace, name or "<unnamed>", problems, origin)
    resource = Resource(api_version, kind, namespace, name, spec, resource_labels, annotations)
    if problems:
        object.__setattr__(resource, "_warnings", [p for p in problems if p.warning])
    return resource


def warnings_of(resource: Resource) -> list[FieldError]:
    return list(getattr(resource, "_warnings", []))


@dataclass
class ParseResult:
    """The outcome for a batch of documents: what is valid, and every problem."""

    resources: list[tuple[Origin, Resource]] = field(default_factory=list)
    invalid: list[ResourceInvalid] = field(default_factory=list)
    unsupported: list[UnsupportedKind] = field(default_factory=list)
    unreadable: list[DocumentError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.invalid or self.unreadable)

    def identities(self) -> list[tuple[str, str, str]]:
        """(kind, namespace, name) of every document that names a resource, valid or not:
        what a delete removes (an invalid spec still names what to delete, as in kubectl)."""
        return [(r.kind, r.namespace, r.name) for _, r in self.resources] + \
            [(i.kind, i.namespace, i.name) for i in self.invalid]

    def errors(self, *, with_origin: bool = True) -> list[str]:
        """Every problem, one line each: the unreadable documents, then each invalid
        resource's fields (see `ResourceInvalid.lines`)."""
        lines = [str(error) for error in self.unreadable]
        for invalid in self.invalid:
            lines.extend(invalid.lines(with_origin=with_origin))
        return lines


def _expand_lists(body: Any, origin: Origin) -> Iterator[tuple[Origin, Any]]:
    """kubectl's `kind: List` wraps resources in `items`; unwrap it."""
    if isinstance(body, dict) and body.get("kind") == "List" and isinstance(body.get("items"), list):
        for i, item in enumerate(body["items"]):
            yield Origin(f"{origin}.items", i), item
    else:
        yield origin, body


def parse_documents(bodies: Iterable[tuple[Origin, Any]], *, default_namespace: str = "default") -> ParseResult:
    result = ParseResult()
    for outer_origin, outer in bodies:
        for origin, body in _expand_lists(outer, outer_origin):
            try:
                resource = parse_resource(body, origin, default_namespace=default_namespace)
            except UnsupportedKind as exc:
                result.unsupported.append(exc)
            except ResourceInvalid as exc:
                result.invalid.append(exc)
            except DocumentError as exc:
                result.unreadable.append(exc)
            else:
                result.resources.append((origin, resource))
    return result


def parse_text(data: bytes | str, source: str, *, default_namespace: str = "default",
               limits: LoadLimits = DEFAULT_LIMITS) -> ParseResult:
    """Load and validate every document of one file or request body."""
    try:
        documents = load_documents(data, source, limits)
    except DocumentError as exc:
        return ParseResult(unreadable=[exc])
    return parse_documents(((d.origin, d.body) for d in documents), default_namespace=default_namespace)
