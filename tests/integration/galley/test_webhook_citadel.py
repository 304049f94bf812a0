"""galley's validating webhook with its certificate from citadel, checked as the Kubernetes
API server checks it: real nats-server, a real citadel process (which keeps the caBundle of
deploy/kubernetes's ValidatingWebhookConfiguration `istio-galley`, stored in the fake API
server, set to its root) and a real galley process; the client trusts only that caBundle,
expects the Service's DNS name `istio-galley.istio-system.svc` in the certificate, and POSTs
AdmissionReviews to each webhook's path."""

from __future__ import annotations

import base64
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography import x509

from tests.harness.citadel import Citadel, start_citadel
from tests.harness.http import HTTP
from tests.harness.kube_apiserver import FakeKubeApiServer
from tests.harness.kube_resources import cluster_types
from tests.harness.mesh import GalleyService, Mesh
from tests.harness.nats import start_nats
from tests.harness.ports import free_port
from tests.harness.processes import ProcessGroup
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

WEBHOOK_CONFIGURATION = (Path(__file__).resolve().parents[3] / "deploy" / "kubernetes" / "base"
                         / "galley-webhook.yaml")
NAMESPACE = "istio-system"
SERVICE_ACCOUNT = "istio-galley-service-account"
SERVICE_NAME = "istio-galley.istio-system.svc"
GALLEY_GRANT = f"{NAMESPACE}/{SERVICE_ACCOUNT}={SERVICE_NAME}"
UID = "3b1c6f0e-8d2a-4f5e-9c7b-1a2b3c4d5e6f"

INVALID_VS = {
    "apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
    "metadata": {"name": "reviews", "namespace": "bookinfo", "uid": "0f0e", "generation": 1,
                 "creationTimestamp": "2024-05-01T10:00:00Z"},
    "spec": {"hosts": ["reviews"], "http": [{"route": [
        {"destination": {"host": "reviews", "subset": "v1"}, "weight": 40},
        {"destination": {"host": "reviews", "subset": "v2"}, "weight": 50}]}]},
}
VALID_VS = {**INVALID_VS, "spec": {"hosts": ["reviews"], "http": [{"route": [
    {"destination": {"host": "reviews", "subset": "v1"}, "weight": 50},
    {"destination": {"host": "reviews", "subset": "v2"}, "weight": 50}]}]}}
INVALID_RULE = {
    "apiVersion": "config.istio.io/v1alpha2", "kind": "rule",
    "metadata": {"name": "deny-ratings", "namespace": "istio-system"},
    "spec": {"match": "destination.labels[\"app\"] ==", "actions": [{"handler": "denyall",
                                                                      "instances": ["denyrequest"]}]},
}


def admission_review(obj: dict[str, Any], resource: str, operation: str = "CREATE") -> dict[str, Any]:
    """An AdmissionReview as the API server sends it for an Istio resource."""
    group, version = obj["apiVersion"].split("/")
    return {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": UID, "kind": {"group": group, "version": version, "kind": obj["kind"]},
            "resource": {"group": group, "version": version, "resource": resource},
            "namespace": obj["metadata"]["namespace"], "name": obj["metadata"]["name"], "operation": operation,
            "object": obj, "userInfo": {"username": "kubernetes-admin"}, "dryRun": False,
        },
    }


@dataclass
class Plane:
    group: ProcessGroup
    work: Path
    api: FakeKubeApiServer
    citadel: Citadel
    mesh: Mesh
    galley: GalleyService
    webhook_port: int
    token: Path

    def configuration(self) -> dict[str, Any]:
        rtype = next(t for t in self.api.store.types.values() if t.plural == "validatingwebhookconfigurations")
        found: dict[str, Any] = self.api.store.get(rtype, ("", "istio-galley"))
        return found


def start_galley(mesh: Mesh, citadel: Citadel, token: Path, webhook_port: int,
                 *extra: str, name: str = "galley") -> GalleyService:
    return mesh.galley(None, "--webhook-cert-source", "citadel", "--webhook-address", "127.0.0.1",
                       "--webhook-port", str(webhook_port), "--citadel-address", citadel.address,
                       "--citadel-root-cert", str(citadel.root_file), "--citadel-token-file", str(token),
                       "--citadel-retry-initial-s", "0.05", *extra, name=name)


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    work = tmp_path_factory.mktemp("galley-webhook")
    (work / "logs").mkdir()
    group = ProcessGroup(work / "logs")
    api = FakeKubeApiServer(cluster_types()).start()
    try:
        # The ValidatingWebhookConfiguration exactly as the manifests have it (no caBundle).
        api.create(yaml.safe_load(WEBHOOK_CONFIGURATION.read_text()))
        nats = start_nats(group, work / "nats")
        citadel = start_citadel(group, nats.url, work / "citadel", "--kubeconfig",
                                str(api.write_kubeconfig(work / "kubeconfig")),
                                "--webhook-ca-bundles", "validating/istio-galley", "--dns-grants", GALLEY_GRANT)
        token = citadel.token_file(work / "galley-token", NAMESPACE, SERVICE_ACCOUNT)
        webhook_port = free_port()
        mesh = Mesh(group, nats, work)
        galley = start_galley(mesh, citadel, token, webhook_port)
        yield Plane(group, work, api, citadel, mesh, galley, webhook_port, token)
    except BaseException:
        print(group.logs())
        raise
    finally:
        group.stop_all()
        api.stop()


def ca_bundle(plane: Plane) -> bytes | None:
    """The caBundle citadel set, when every webhook has the same one."""
    bundles = {(w["clientConfig"].get("caBundle") or "") for w in plane.configuration()["webhooks"]}
    return base64.b64decode(bundles.pop()) if len(bundles) == 1 and "" not in bundles else None


def api_server_client(plane: Plane) -> httpx.Client:
    """A client trusting only the webhook configuration's caBundle, as the API server does."""
    bundle = wait_until(lambda: ca_bundle(plane), timeout=20, what="citadel to set the webhooks' caBundle")
    return httpx.Client(verify=ssl.create_default_context(cadata=bundle.decode()), timeout=10.0)


def call(plane: Plane, client: httpx.Client, webhook: dict[str, Any], body: dict[str, Any], *,
         port: int | None = None) -> dict[str, Any]:
    """POST `body` where the API server would: the webhook's Service name (checked in the
    certificate, sent as SNI) and path, reached on galley's webhook port."""
    service = webhook["clientConfig"]["service"]
    host = f"{service['name']}.{service['namespace']}.svc"
    response = client.post(f"https://127.0.0.1:{port or plane.webhook_port}{service['path']}", json=body,
                           extensions={"sni_hostname": host})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert answer["kind"] == "AdmissionReview"
    review: dict[str, Any] = answer["response"]
    return review


def webhook(plane: Plane, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(w for w in plane.configuration()["webhooks"] if w["name"] == name)
    return found


def served_certificate(port: int, root_pem: bytes) -> x509.Certificate:
    """The certificate a new handshake gets, verified against `root_pem` for the Service's name."""
    context = ssl.create_default_context(cadata=root_pem.decode())
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=SERVICE_NAME) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def test_citadel_sets_both_webhooks_ca_bundle_to_its_root(plane: Plane) -> None:
    bundle = wait_until(lambda: ca_bundle(plane), timeout=20, what="citadel to set the webhooks' caBundle")
    assert bundle == plane.citadel.root_pem
    assert [w["name"] for w in plane.configuration()["webhooks"]] == ["pilot.validation.istio.io",
                                                                      "mixer.validation.istio.io"]


def test_an_invalid_virtual_service_is_refused_over_tls_with_the_field_named(plane: Plane) -> None:
    with api_server_client(plane) as client:
        pilot = webhook(plane, "pilot.validation.istio.io")
        refused = call(plane, client, pilot, admission_review(INVALID_VS, "virtualservices"))
        assert refused["uid"] == UID
        assert refused["allowed"] is False
        assert refused["status"]["code"] == 400
        assert refused["status"]["message"] == (
            "VirtualService bookinfo/reviews: spec.http[0].route: weights sum to 90, must be 100")
        # An update is checked as a create is; the fixed resource passes.
        assert call(plane, client, pilot, admission_review(INVALID_VS, "virtualservices", "UPDATE"))[
            "allowed"] is False
        assert call(plane, client, pilot, admission_review(VALID_VS, "virtualservices")) == {
            "uid": UID, "allowed": True}


def test_mixer_config_is_refused_on_the_mixer_webhook(plane: Plane) -> None:
    with api_server_client(plane) as client:
        refused = call(plane, client, webhook(plane, "mixer.validation.istio.io"),
                       admission_review(INVALID_RULE, "rules"))
    assert refused["allowed"] is False
    assert refused["status"]["message"].startswith("rule istio-system/deny-ratings: spec.match:"), refused


def test_the_certificate_is_citadels_for_galleys_identity_and_service_name(plane: Plane) -> None:
    leaf = served_certificate(plane.webhook_port, plane.citadel.root_pem)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [SERVICE_NAME]
    assert names.get_values_for_type(x509.UniformResourceIdentifier) == [
        f"spiffe://cluster.local/ns/{NAMESPACE}/sa/{SERVICE_ACCOUNT}"]
    # A name the certificate does not hold fails the check the API server makes.
    with pytest.raises(ssl.SSLCertVerificationError, match="match"):
        context = ssl.create_default_context(cadata=plane.citadel.root_pem.decode())
        with socket.create_connection(("127.0.0.1", plane.webhook_port), timeout=5) as raw:
            context.wrap_socket(raw, server_hostname="istio-pilot.istio-system.svc").close()
    # Plain HTTP is not served on the webhook port.
    with pytest.raises(httpx.HTTPError):
        HTTP.post(f"http://127.0.0.1:{plane.webhook_port}/validate", json={}, timeout=2)
    assert plane.galley.metric("galley_serving_certs_total") >= 1


def test_the_certificate_is_renewed_without_a_restart(plane: Plane) -> None:
    """A certificate living 4 s is renewed at a third of its life: new handshakes get the new
    one from the same process, and reviews keep being answered."""
    port = free_port()
    galley = start_galley(plane.mesh, plane.citadel, plane.token, port, "--serving-cert-ttl-s", "4",
                          "--cert-rotation-fraction", "0.3", name="short-lived-galley")
    first = served_certificate(port, plane.citadel.root_pem)
    renewed = wait_until(lambda: (cert := served_certificate(port, plane.citadel.root_pem)).serial_number
                         != first.serial_number and cert, timeout=20, what="a renewed webhook certificate")
    assert renewed.not_valid_after_utc > first.not_valid_after_utc
    assert galley.process.alive()
    with api_server_client(plane) as client:
        review = call(plane, client, webhook(plane, "pilot.validation.istio.io"),
                      admission_review(INVALID_VS, "virtualservices"), port=port)
    assert review["allowed"] is False
    assert galley.metric("galley_serving_certs_total") >= 2
    galley.process.stop()



def test_a_refused_csr_keeps_galley_unready_and_says_why(plane: Plane) -> None:
    """galley running as an identity citadel grants no webhook name: citadel refuses every CSR,
    galley retries, stays out of the Service's endpoints (/readyz names the webhook's
    certificate) and logs citadel's reason."""
    token = plane.citadel.token_file(plane.work / "impostor-token", NAMESPACE, "someone-else")
    port = free_port()
    galley = plane.mesh.galley(None, "--webhook-cert-source", "citadel", "--webhook-address", "127.0.0.1",
                               "--webhook-port", str(port), "--citadel-address", plane.citadel.address,
                               "--citadel-root-cert", str(plane.citadel.root_file), "--citadel-token-file",
                               str(token), "--service-account", "someone-else", "--citadel-retry-initial-s",
                               "0.05", "--citadel-retry-max-s", "0.2", name="refused-galley", wait=False)
    wait_until(lambda: galley.metric("galley_serving_cert_failures_total", reason="CitadelRefused") >= 2,
               timeout=20, what="citadel to refuse galley's CSRs")
    readyz = galley.get("/readyz")
    assert readyz.status_code == 503
    assert readyz.json()["pending"] == ["webhook-serving"]
    assert galley.process.alive()
    log = galley.process.log()
    assert "getting the webhook certificate failed; retrying" in log
    assert f"caller spiffe://cluster.local/ns/{NAMESPACE}/sa/someone-else may not request a certificate for " \
           f"DNSName {SERVICE_NAME}" in log
    with pytest.raises(httpx.HTTPError):  # nothing listens before a certificate is in place
        httpx.post(f"https://127.0.0.1:{port}/validate", json={}, timeout=2, verify=False)
    galley.process.stop()
