"""The validating admission webhook: real AdmissionReview JSON POSTed over TLS."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.harness.http import HTTP
from tests.harness.mesh import Mesh
from tests.harness.ports import free_port
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "galley.istio-system.svc")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "webhook.crt", directory / "webhook.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def _review(obj: dict[str, object], operation: str = "CREATE") -> dict[str, object]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "networking.istio.io", "version": "v1", "kind": obj["kind"]},
            "resource": {"group": "networking.istio.io", "version": "v1", "resource": "virtualservices"},
            "namespace": "shop",
            "operation": operation,
            "object": obj,
            "userInfo": {"username": "admin"},
            "dryRun": False,
        },
    }


VS = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "reviews", "namespace": "shop", "uid": "abc", "resourceVersion": "12"},
    "spec": {"hosts": ["reviews"], "http": [{"route": [
        {"destination": {"host": "reviews", "subset": "v1"}, "weight": 40},
        {"destination": {"host": "reviews", "subset": "v2"}, "weight": 50},
    ]}]},
}


def test_webhook_denies_with_the_cli_message_and_allows_valid(mesh: Mesh, tmp_path: Path,
                                                              request: pytest.FixtureRequest) -> None:
    cert, key = _self_signed(tmp_path)
    port = free_port()
    mesh.galley(None, "--webhook-address", "127.0.0.1", "--webhook-port", str(port),
                "--webhook-cert-file", str(cert), "--webhook-key-file", str(key))
    url = f"https://127.0.0.1:{port}/validate"
    client = httpx.Client(verify=ssl.create_default_context(cafile=str(cert)), timeout=5)
    request.addfinalizer(client.close)
    wait_until(lambda: client.post(url, json=_review(VS)).status_code == 200, what="webhook over TLS")

    denied = client.post(url, json=_review(VS)).json()["response"]
    assert denied["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002"
    assert denied["allowed"] is False
    assert denied["status"]["message"] == (
        "VirtualService shop/reviews: spec.http[0].route: weights sum to 90, must be 100")

    valid = dict(VS, spec={"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews"}}]}]})
    allowed = client.post(url, json=_review(valid)).json()["response"]
    assert allowed == {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": True}

    unknown_field = dict(VS, spec={"hosts": ["reviews"], "htp": []})
    denied = client.post(url, json=_review(unknown_field)).json()["response"]
    assert "spec.htp: unknown field in VirtualService" in denied["status"]["message"]

    assert client.post(url, json=_review(VS, operation="DELETE")).json()["response"]["allowed"] is True
    assert client.post(url, content=b"not json").status_code == 400
    # Plain HTTP is not served.
    with pytest.raises(httpx.HTTPError):
        HTTP.post(f"http://127.0.0.1:{port}/validate", json=_review(VS), timeout=2)
