"""SDS resource names the agent serves, Istio's spelling, parsed; and pilot's names parse."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.agent.errors import InvalidSecretName
from services.agent.sds_names import FileCert, FileRoot, KubernetesSecret, WorkloadSecret, parse_secret_name
from services.pilot.networking.gateway_tls import credential_resource_name
from services.pilot.networking.sds_secrets import file_cert_name, file_root_name


@pytest.mark.parametrize("name", ["default", "ROOTCA"])
def test_workload_secrets(name: str) -> None:
    assert parse_secret_name(name) == WorkloadSecret(name)


@pytest.mark.parametrize(("resource", "namespace", "name", "ca_only"), [
    ("kubernetes://bookinfo-credential", None, "bookinfo-credential", False),
    ("kubernetes://bookinfo-credential-cacert", None, "bookinfo-credential-cacert", True),
    ("kubernetes://istio-system/web.example.com", "istio-system", "web.example.com", False),
    ("kubernetes-gateway://istio-system/gw-cert", "istio-system", "gw-cert", False),
])
def test_kubernetes_credentials(resource: str, namespace: str | None, name: str, ca_only: bool) -> None:
    parsed = parse_secret_name(resource)
    assert parsed == KubernetesSecret(resource, namespace, name)
    assert isinstance(parsed, KubernetesSecret) and parsed.ca_only is ca_only


def test_file_names() -> None:
    assert parse_secret_name("file-cert:/etc/certs/a.pem~/etc/certs/a.key") == FileCert(
        "file-cert:/etc/certs/a.pem~/etc/certs/a.key", Path("/etc/certs/a.pem"), Path("/etc/certs/a.key"))
    assert parse_secret_name("file-root:/etc/certs/ca.pem") == FileRoot("file-root:/etc/certs/ca.pem",
                                                                        Path("/etc/certs/ca.pem"))


@pytest.mark.parametrize(("resource", "reason"), [
    ("kubernetes://", "'' is not a Kubernetes secret name"),
    ("kubernetes://..", "'..' is not a Kubernetes secret name"),
    ("kubernetes://a/b/c", "expected kubernetes://<name> or <namespace>/<name>"),
    ("kubernetes://Bad_Name", "'Bad_Name' is not a Kubernetes secret name"),
    ("kubernetes://../x", "'..' is not a Kubernetes namespace name"),
    ("kubernetes-gateway://only-name", "expected kubernetes-gateway://<namespace>/<name>"),
    ("file-cert:/only-a-cert.pem", "expected file-cert:<certificate path>~<key path>"),
    ("file-cert:/a~/b~/c", "expected file-cert:"),
    ("file-cert:~/key", "expected file-cert:"),
    ("file-root:", "expected file-root:<CA certificate path>"),
    ("file-root:/a~/b", "expected file-root:"),
    ("configmap://ns/ca", "not a secret this agent serves"),
    ("something", "not a secret this agent serves"),
])
def test_names_the_agent_refuses_say_why(resource: str, reason: str) -> None:
    with pytest.raises(InvalidSecretName, match=re.escape(reason)) as caught:
        parse_secret_name(resource)
    assert caught.value.what == resource


def test_what_pilot_asks_for_is_what_the_agent_parses() -> None:
    assert parse_secret_name(file_cert_name("/c/cert.pem", "/c/key.pem")) == FileCert(
        "file-cert:/c/cert.pem~/c/key.pem", Path("/c/cert.pem"), Path("/c/key.pem"))
    assert parse_secret_name(file_root_name("/c/ca.pem")) == FileRoot("file-root:/c/ca.pem", Path("/c/ca.pem"))
    resource = credential_resource_name("bookinfo-credential")
    assert parse_secret_name(resource) == KubernetesSecret(resource, None, "bookinfo-credential")
    assert parse_secret_name(credential_resource_name("builtin://")) == WorkloadSecret("default")
