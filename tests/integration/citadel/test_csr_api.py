"""Citadel as a real process: Istio's CSR API over TLS, its refusals, and the trust bundle on NATS."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from cryptography import x509

from libs.bus import MESH_TRUST, Bus, BusSettings
from libs.pki import SpiffeId, cert_pem, load_certs
from libs.proto_gen.istio.v1.auth import ca_pb2, ca_pb2_grpc
from services.agent.identity import new_key_and_csr
from tests.harness.citadel import Citadel, start_citadel
from tests.harness.identity import request_certificate
from tests.harness.nats import NatsServer
from tests.harness.pki import make_ca, verify_client_chain, write_cacerts
from tests.harness.processes import ProcessGroup
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

WEB = SpiffeId("cluster.local", "default", "web")
ISSUED = "citadel_server_success_cert_issuance_count_total"


@pytest.fixture
def citadel(processes: ProcessGroup, nats: NatsServer, tmp_path: Path) -> Citadel:
    return start_citadel(processes, nats.url, tmp_path / "citadel")


def _call(citadel: Citadel, csr: str, token: str | None, ttl_s: int = 3600) -> ca_pb2.IstioCertificateResponse:
    metadata = (("authorization", f"Bearer {token}"),) if token is not None else ()
    with grpc.secure_channel(citadel.address, grpc.ssl_channel_credentials(citadel.root_pem)) as channel:
        return ca_pb2_grpc.IstioCertificateServiceStub(channel).CreateCertificate(
            ca_pb2.IstioCertificateRequest(csr=csr, validity_duration=ttl_s), metadata=metadata, timeout=10)


def _refused(citadel: Citadel, csr: str, token: str | None, ttl_s: int = 3600) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        _call(citadel, csr, token, ttl_s)
    return caught.value


def _trust_bundle(nats_url: str, key: str = "cluster.local") -> tuple[bytes, int]:
    async def read() -> tuple[bytes, int]:
        bus = await Bus.connect(BusSettings(url=nats_url), name="test")
        try:
            entry = await (await bus.kv(MESH_TRUST)).get(key)
            return entry.value, entry.revision
        finally:
            await bus.close()

    return asyncio.run(read())


def test_a_valid_csr_is_signed(citadel: Citadel) -> None:
    _, csr = new_key_and_csr("ec-p256", WEB)
    response = _call(citadel, csr, citadel.token("default", "web"), ttl_s=600)
    root = x509.load_pem_x509_certificate(citadel.root_pem)
    leaf = verify_client_chain(list(response.cert_chain), [root])
    assert response.cert_chain[-1] == cert_pem(root), "the root comes last, as Istio sends it"
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier) == [WEB.uri]
    assert 595 <= (leaf.not_valid_after_utc.timestamp() - time.time()) <= 600
    assert citadel.metric(ISSUED) == 1
    assert citadel.metric("citadel_server_csr_count_total") == 1


def test_refusals_sign_nothing(citadel: Citadel) -> None:
    _, csr = new_key_and_csr("ec-p256", WEB)
    token = citadel.token("default", "web")
    cases = [
        # A CSR for someone else's identity.
        (new_key_and_csr("ec-p256", SpiffeId("cluster.local", "default", "admin"))[1], token, 3600,
         grpc.StatusCode.PERMISSION_DENIED, "caller spiffe://cluster.local/ns/default/sa/web may not request"),
        ("-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n-----END CERTIFICATE REQUEST-----\n", token, 3600,
         grpc.StatusCode.INVALID_ARGUMENT, "the CSR is not a PEM PKCS#10 request"),
        (csr, token, 91 * 86400, grpc.StatusCode.INVALID_ARGUMENT, "exceeds the maximum of 7776000s"),
        (csr, citadel.token("default", "web", now=time.time() - 7200), 3600,
         grpc.StatusCode.UNAUTHENTICATED, "token expired"),
        (csr, token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB"), 3600,
         grpc.StatusCode.UNAUTHENTICATED, "signature does not verify"),
        (csr, None, 3600, grpc.StatusCode.UNAUTHENTICATED, "no authorization metadata"),
        # A good token does not make a malformed CSR signable, nor a bad token a good CSR.
        ("", citadel.token("default", "web"), 3600, grpc.StatusCode.INVALID_ARGUMENT, "carries no CSR"),
    ]
    for request_csr, request_token, ttl_s, code, message in cases:
        error = _refused(citadel, request_csr, request_token, ttl_s)
        assert error.code() == code, (message, error.details())
        assert message in (error.details() or ""), error.details()
    assert citadel.metric(ISSUED) == 0
    assert citadel.metric("citadel_server_csr_count_total") == len(cases)
    assert citadel.metric("citadel_server_authentication_failure_count_total") == 3
    assert citadel.metric('citadel_server_csr_sign_err_count_total{error="permission_denied"}') == 1
    assert citadel.process.alive()
    # And it still signs afterwards.
    _call(citadel, csr, token)
    assert citadel.metric(ISSUED) == 1


def test_restart_keeps_the_root_the_token_key_and_the_bundle(processes: ProcessGroup, nats: NatsServer,
                                                             tmp_path: Path) -> None:
    first = start_citadel(processes, nats.url, tmp_path / "citadel", name="citadel-1")
    root = first.root_pem
    token = first.token("default", "web")
    wait_until(lambda: first.metric("citadel_trust_bundle_revision") > 0, what="trust bundle published")
    bundle, revision = _trust_bundle(nats.url)
    assert bundle == root
    first.process.stop()
    assert first.process.popen.returncode == 0, f"SIGTERM is a clean stop:\n{first.process.log()[-4000:]}"

    second = start_citadel(processes, nats.url, tmp_path / "citadel", name="citadel-2")
    assert second.root_pem == root
    _, chain = request_certificate(second.address, root, token, WEB)
    assert chain[-1] == root.decode()
    wait_until(lambda: second.metric("citadel_trust_bundle_revision") > 0, what="trust bundle checked")
    assert _trust_bundle(nats.url) == (root, revision), "an unchanged bundle is not rewritten"


def test_plugged_in_ca_signs_as_an_intermediate(processes: ProcessGroup, nats: NatsServer, tmp_path: Path) -> None:
    root = make_ca("corp root")
    signing = make_ca("mesh intermediate", issuer=root)
    next_root = make_ca("next corp root")
    cacerts = write_cacerts(tmp_path / "cacerts", signing, [signing[0], root[0]], [root[0], next_root[0]])
    citadel = start_citadel(processes, nats.url, tmp_path / "citadel", "--cacerts-dir", str(cacerts))
    _, chain = request_certificate(citadel.address, (cacerts / "root-cert.pem").read_bytes(),
                                     citadel.token("default", "web"), WEB)
    assert chain[1:] == [cert_pem(signing[0]), cert_pem(root[0])]
    verify_client_chain(chain, [root[0]])
    wait_until(lambda: citadel.metric("citadel_trust_bundle_revision") > 0, what="trust bundle published")
    assert load_certs(_trust_bundle(nats.url)[0]) == [root[0], next_root[0]]
    assert not (tmp_path / "citadel" / "root-key.pem").exists(), "no self-signed root beside a plugged-in CA"


def test_broken_cacerts_stop_citadel_with_the_reason(processes: ProcessGroup, nats: NatsServer,
                                                     tmp_path: Path) -> None:
    root = make_ca("root")
    cacerts = write_cacerts(tmp_path / "cacerts", make_ca("mesh", issuer=root), [], [root[0]])
    (cacerts / "ca-key.pem").unlink()
    citadel = start_citadel(processes, nats.url, tmp_path / "citadel", "--cacerts-dir", str(cacerts), wait=False)
    assert citadel.process.popen.wait(timeout=30) == 1
    assert "ca-key.pem is missing" in citadel.process.log()


def test_mint_token_command(citadel: Citadel, tmp_path: Path) -> None:
    token_file = tmp_path / "web.token"
    done = subprocess.run([sys.executable, "-m", "services.citadel", "mint-token", "--state-dir",
                           str(citadel.state_dir), "--namespace", "default", "--service-account", "web",
                           "--ttl", "10m", "--output", str(token_file)], capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert token_file.stat().st_mode & 0o777 == 0o600
    _, csr = new_key_and_csr("rsa-2048", WEB)
    assert len(_call(citadel, csr, token_file.read_text().strip()).cert_chain) == 2
    bad = subprocess.run([sys.executable, "-m", "services.citadel", "mint-token", "--state-dir",
                          str(citadel.state_dir), "--namespace", "Not_Valid", "--service-account", "web"],
                         capture_output=True, text=True, timeout=30, check=False)
    assert bad.returncode == 2
    assert "namespace 'Not_Valid' is not a Kubernetes namespace name" in bad.stderr


def _serving_serial(citadel: Citadel) -> int:
    """The serial of the certificate the CSR API presents, checked against citadel's root for 127.0.0.1."""
    context = ssl.create_default_context(cafile=str(citadel.root_file))
    context.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", citadel.grpc_port), timeout=3) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der).serial_number


def test_the_serving_certificate_is_renewed_without_a_restart(processes: ProcessGroup, nats: NatsServer,
                                                              tmp_path: Path) -> None:
    citadel = start_citadel(processes, nats.url, tmp_path / "citadel", "--serving-cert-ttl-s", "2")
    first = _serving_serial(citadel)
    wait_until(lambda: _serving_serial(citadel) != first, timeout=15, what="a renewed serving certificate")
    _, csr = new_key_and_csr("ec-p256", WEB)
    assert len(_call(citadel, csr, citadel.token("default", "web")).cert_chain) == 2
