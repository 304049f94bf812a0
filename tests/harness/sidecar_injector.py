"""The sidecar injector as a real process for tests, and a real TLS client for its webhook.

The client trusts only citadel's root and checks the host name, as the Kubernetes API
server does with the webhook's caBundle: the injector's certificate names `localhost`
(granted to its identity by citadel's --dns-grants) besides its Service name.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jsonpatch
from cryptography import x509

from tests.harness.citadel import Citadel
from tests.harness.http import HTTP
from tests.harness.ports import free_port
from tests.harness.processes import Process, ProcessGroup
from tests.harness.waiting import wait_until

NAMESPACE = "istio-system"
SERVICE_ACCOUNT = "istio-sidecar-injector-service-account"
DNS_NAMES = ("istio-sidecar-injector.istio-system.svc", "localhost")
# Citadel flags granting the injector its webhook names.
CITADEL_GRANTS = ("--dns-grants", ",".join(f"{NAMESPACE}/{SERVICE_ACCOUNT}={name}" for name in DNS_NAMES))


def admission_review(pod: dict[str, Any], namespace: str, *, uid: str = "7d5cf8a3-1a2b-4c3d-9e8f-0a1b2c3d4e5f",
                     operation: str = "CREATE") -> dict[str, Any]:
    """An AdmissionReview as the API server sends it for a pod being created."""
    return {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": namespace, "operation": operation, "object": pod,
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"}, "dryRun": False,
        },
    }


def patched(pod: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """The pod as the API server stores it after the webhook's patch."""
    if "patch" not in response:
        return pod
    assert response["patchType"] == "JSONPatch"
    return jsonpatch.apply_patch(pod, json.loads(base64.b64decode(response["patch"])))


@dataclass
class Injector:
    process: Process
    webhook_port: int
    monitoring_port: int
    root_file: Path

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.root_file))

    def ready(self) -> bool:
        return HTTP.get(f"http://127.0.0.1:{self.monitoring_port}/readyz", timeout=1.0).status_code == 200

    def post(self, body: Any) -> httpx.Response:
        with httpx.Client(verify=self.tls(), timeout=10.0) as client:
            return client.post(f"https://localhost:{self.webhook_port}/inject", json=body)

    def review(self, pod: dict[str, Any], namespace: str = "default", **kwargs: Any) -> dict[str, Any]:
        response = self.post(admission_review(pod, namespace, **kwargs))
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer["response"]

    def certificate(self) -> x509.Certificate:
        """The certificate a new TLS handshake gets (verified against citadel's root)."""
        with socket.create_connection(("127.0.0.1", self.webhook_port), timeout=5) as raw, \
                self.tls().wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der)

    def metric(self, name: str) -> float:
        text = HTTP.get(f"http://127.0.0.1:{self.monitoring_port}/metrics", timeout=5.0).text
        return next((float(line.rpartition(" ")[2]) for line in text.splitlines()
                     if line.rpartition(" ")[0] == name), 0.0)


def start_injector(group: ProcessGroup, nats_url: str, citadel: Citadel, work_dir: Path, *extra: str,
                   name: str = "sidecar-injector") -> Injector:
    work_dir.mkdir(parents=True, exist_ok=True)
    token = citadel.token_file(work_dir / f"{name}-token", NAMESPACE, SERVICE_ACCOUNT)
    webhook_port, monitoring_port = free_port(), free_port()
    process = group.python(
        name, "services.sidecar_injector", "--nats-url", nats_url, "--log-level", "debug", "--log-json",
        "--webhook-address", "127.0.0.1", "--webhook-port", str(webhook_port),
        "--monitoring-address", "127.0.0.1", "--monitoring-port", str(monitoring_port),
        "--citadel-address", citadel.address, "--citadel-root-cert", str(citadel.root_file),
        "--citadel-token-file", str(token), "--serving-dns-names", ",".join(DNS_NAMES),
        "--config-poll-interval-s", "0.05", *extra)
    injector = Injector(process, webhook_port, monitoring_port, citadel.root_file)
    wait_until(injector.ready, timeout=30, what=f"{name} /readyz")
    return injector
