"""The SDS resource names Envoy asks the agent for, parsed (Istio's names, pure):

- `default`, `ROOTCA`: the workload certificate and the mesh's roots (identity);
- `kubernetes://<name>`, `kubernetes://<namespace>/<name>`: a gateway credential, Istio's
  `credentialName` (credentials.ParseResourceName); a `-cacert` suffix asks for its CA only;
  `kubernetes-gateway://<namespace>/<name>` is read the same way (namespace required);
- `file-cert:<cert path>~<key path>`, `file-root:<CA path>`: certificate files on the
  proxy's host (security.SdsCertificateConfigFromResourceName).

Kubernetes names are checked against Kubernetes' rules before any store sees them, so a
name can never walk out of a credentials directory (`kubernetes://../x`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from services.agent.errors import InvalidSecretName

DEFAULT = "default"
ROOTCA = "ROOTCA"
KUBERNETES = "kubernetes://"
KUBERNETES_GATEWAY = "kubernetes-gateway://"
FILE_CERT = "file-cert:"
FILE_ROOT = "file-root:"
# Between the certificate and the key path of `file-cert:` (Istio's ResourceSeparator).
SEPARATOR = "~"
CA_SUFFIX = "-cacert"

# A Secret's name is a DNS subdomain, a namespace a DNS label.
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


@dataclass(frozen=True, slots=True)
class WorkloadSecret:
    """`default` or `ROOTCA`, from the workload identity."""

    resource: str


@dataclass(frozen=True, slots=True)
class KubernetesSecret:
    """A credential: `namespace` is None when the name leaves it implicit (the proxy's)."""

    resource: str
    namespace: str | None
    name: str

    @property
    def ca_only(self) -> bool:
        return self.name.endswith(CA_SUFFIX)


@dataclass(frozen=True, slots=True)
class FileCert:
    resource: str
    cert_path: Path
    key_path: Path


@dataclass(frozen=True, slots=True)
class FileRoot:
    resource: str
    ca_path: Path


SecretName = WorkloadSecret | KubernetesSecret | FileCert | FileRoot


def parse_secret_name(resource: str) -> SecretName:
    """Raises InvalidSecretName saying what is wrong with the name."""
    if resource in (DEFAULT, ROOTCA):
        return WorkloadSecret(resource)
    if resource.startswith(KUBERNETES):
        return _kubernetes(resource, resource.removeprefix(KUBERNETES), namespace_required=False)
    if resource.startswith(KUBERNETES_GATEWAY):
        return _kubernetes(resource, resource.removeprefix(KUBERNETES_GATEWAY), namespace_required=True)
    if resource.startswith(FILE_CERT):
        paths = resource.removeprefix(FILE_CERT).split(SEPARATOR)
        if len(paths) != 2 or not all(paths):
            raise InvalidSecretName(resource, f"expected {FILE_CERT}<certificate path>{SEPARATOR}<key path>")
        return FileCert(resource, Path(paths[0]), Path(paths[1]))
    if resource.startswith(FILE_ROOT):
        path = resource.removeprefix(FILE_ROOT)
        if not path or SEPARATOR in path:
            raise InvalidSecretName(resource, f"expected {FILE_ROOT}<CA certificate path>")
        return FileRoot(resource, Path(path))
    raise InvalidSecretName(resource, f"not a secret this agent serves (it serves {DEFAULT}, {ROOTCA}, "
                                      f"{KUBERNETES}..., {FILE_CERT}... and {FILE_ROOT}...)")


def _kubernetes(resource: str, rest: str, *, namespace_required: bool) -> KubernetesSecret:
    parts = rest.split("/")
    if len(parts) > 2 or (namespace_required and len(parts) != 2):
        form = "<namespace>/<name>" if namespace_required else "<name> or <namespace>/<name>"
        raise InvalidSecretName(resource, f"expected {resource[:len(resource) - len(rest)]}{form}")
    namespace, name = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])
    if namespace is not None and not (_LABEL.fullmatch(namespace) and len(namespace) <= 63):
        raise InvalidSecretName(resource, f"{namespace!r} is not a Kubernetes namespace name")
    if not (_SUBDOMAIN.fullmatch(name) and len(name) <= 253):
        raise InvalidSecretName(resource, f"{name!r} is not a Kubernetes secret name")
    return KubernetesSecret(resource, namespace, name)
