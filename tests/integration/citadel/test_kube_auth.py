"""Citadel in Kubernetes mode, as a real process against the fake API server: service-account
tokens checked with a TokenReview, and the self-signed root kept in the `istio-ca-secret`."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509

from libs.pki import SpiffeId, cert_pem
from libs.proto_gen.istio.v1.auth import ca_pb2, ca_pb2_grpc
from services.agent.identity import new_key_and_csr
from tests.harness.citadel import Citadel, start_citadel
from tests.harness.kube_apiserver import FakeKubeApiServer
from tests.harness.nats import NatsServer
from tests.harness.pki import verify_client_chain
from tests.harness.processes import ProcessGroup

pytestmark = pytest.mark.integration

CART = SpiffeId("cluster.local", "shop", "cart")
ISSUED = "citadel_server_success_cert_issuance_count_total"
NAMESPACE = "istio-system"


@pytest.fixture
def kube_api() -> Iterator[FakeKubeApiServer]:
    with FakeKubeApiServer() as api:
        yield api


@pytest.fixture
def kubeconfig(kube_api: FakeKubeApiServer, tmp_path: Path) -> Path:
    return kube_api.write_kubeconfig(tmp_path / "kubeconfig")


def _start(processes: ProcessGroup, nats: NatsServer, state_dir: Path, kubeconfig: Path, *,
           authenticators: str = "kube", name: str = "citadel") -> Citadel:
    return start_citadel(processes, nats.url, state_dir, "--kubeconfig", str(kubeconfig),
                         "--authenticators", authenticators, "--ca-store", "kube", "--ca-namespace", NAMESPACE,
                         "--kube-request-timeout-s", "5", name=name)


@pytest.fixture
def citadel(processes: ProcessGroup, nats: NatsServer, tmp_path: Path, kubeconfig: Path) -> Citadel:
    return _start(processes, nats, tmp_path / "citadel", kubeconfig)


def _secret_root(api: FakeKubeApiServer) -> bytes:
    """The root citadel stored, read from the API server's side."""
    secrets = next(t for t in api.store.types.values() if (t.group, t.plural) == ("", "secrets"))
    secret = api.store.get(secrets, (NAMESPACE, "istio-ca-secret"))
    assert secret["type"] == "istio.io/ca-root"
    assert set(secret["data"]) == {"ca-cert.pem", "ca-key.pem"}
    return base64.b64decode(secret["data"]["ca-cert.pem"])


def _call(citadel: Citadel, root_pem: bytes, csr: str, token: str) -> ca_pb2.IstioCertificateResponse:
    with grpc.secure_channel(citadel.address, grpc.ssl_channel_credentials(root_pem)) as channel:
        return ca_pb2_grpc.IstioCertificateServiceStub(channel).CreateCertificate(
            ca_pb2.IstioCertificateRequest(csr=csr, validity_duration=3600),
            metadata=(("authorization", f"Bearer {token}"),), timeout=10)


def _refused(citadel: Citadel, root_pem: bytes, csr: str, token: str) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        _call(citadel, root_pem, csr, token)
    return caught.value


def _signed_for(response: ca_pb2.IstioCertificateResponse, root_pem: bytes) -> list[str]:
    root = x509.load_pem_x509_certificate(root_pem)
    leaf = verify_client_chain(list(response.cert_chain), [root])
    assert response.cert_chain[-1] == cert_pem(root)
    return leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier)


def test_a_reviewed_service_account_token_gets_its_identity_signed(citadel: Citadel,
                                                                   kube_api: FakeKubeApiServer) -> None:
    kube_api.register_token("cart-sa-token", namespace="shop", service_account="cart", audiences=("istio-ca",))
    root_pem = _secret_root(kube_api)
    _, csr = new_key_and_csr("ec-p256", CART)
    response = _call(citadel, root_pem, csr, "cart-sa-token")
    assert _signed_for(response, root_pem) == ["spiffe://cluster.local/ns/shop/sa/cart"]
    assert [r.method for r in kube_api.requests if r.path.endswith("/tokenreviews")] == ["POST"]
    assert citadel.metric(ISSUED) == 1
    # In kube mode nothing of the CA is written to the state dir.
    assert not citadel.root_file.exists()


def test_refused_tokens_sign_nothing(citadel: Citadel, kube_api: FakeKubeApiServer) -> None:
    kube_api.register_token("cart-sa-token", namespace="shop", service_account="cart", audiences=("istio-ca",))
    kube_api.register_token("apiserver-only", namespace="shop", service_account="cart")
    kube_api.register_token("expired", namespace="shop", service_account="cart", audiences=("istio-ca",),
                            authenticated=False)
    root_pem = _secret_root(kube_api)
    _, csr = new_key_and_csr("ec-p256", CART)
    cases = [
        ("never-issued", grpc.StatusCode.UNAUTHENTICATED, "token lookup failed"),
        ("expired", grpc.StatusCode.UNAUTHENTICATED, "token lookup failed"),
        # Valid for the API server's audience, not the CA's: Istio refuses it too.
        ("apiserver-only", grpc.StatusCode.UNAUTHENTICATED, "is invalid for the target audiences ['istio-ca']"),
    ]
    for token, code, message in cases:
        error = _refused(citadel, root_pem, csr, token)
        assert error.code() == code, (token, error.details())
        assert message in (error.details() or ""), error.details()
    # A genuine token does not let its holder ask for someone else's name.
    _, other_csr = new_key_and_csr("ec-p256", SpiffeId("cluster.local", "shop", "payments"))
    error = _refused(citadel, root_pem, other_csr, "cart-sa-token")
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED, error.details()
    assert "caller spiffe://cluster.local/ns/shop/sa/cart may not request" in (error.details() or "")
    assert citadel.metric(ISSUED) == 0
    assert citadel.metric("citadel_server_authentication_failure_count_total") == len(cases)


def test_an_unreachable_api_server_is_unavailable_not_unauthenticated(citadel: Citadel,
                                                                      kube_api: FakeKubeApiServer) -> None:
    kube_api.register_token("cart-sa-token", namespace="shop", service_account="cart", audiences=("istio-ca",))
    root_pem = _secret_root(kube_api)
    _, csr = new_key_and_csr("ec-p256", CART)
    kube_api.fail_next(plural="tokenreviews", code=503, reason="ServiceUnavailable")
    error = _refused(citadel, root_pem, csr, "cart-sa-token")
    assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
    assert "503 ServiceUnavailable" in (error.details() or "")
    kube_api.stop()
    error = _refused(citadel, root_pem, csr, "cart-sa-token")
    assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
    assert "API server unavailable" in (error.details() or "")
    assert citadel.metric(ISSUED) == 0
    assert citadel.metric("citadel_server_authentication_failure_count_total") == 0
    assert citadel.process.alive()


def test_bootstrap_and_kube_tokens_side_by_side(processes: ProcessGroup, nats: NatsServer, tmp_path: Path,
                                                kubeconfig: Path, kube_api: FakeKubeApiServer) -> None:
    citadel = _start(processes, nats, tmp_path / "citadel", kubeconfig, authenticators="bootstrap,kube")
    kube_api.register_token("cart-sa-token", namespace="shop", service_account="cart", audiences=("istio-ca",))
    root_pem = _secret_root(kube_api)
    for token in (citadel.token("shop", "cart"), "cart-sa-token"):
        _, csr = new_key_and_csr("ec-p256", CART)
        assert _signed_for(_call(citadel, root_pem, csr, token), root_pem) == [CART.uri]
    # The bootstrap token was checked locally; only the service-account token was reviewed.
    assert len([r for r in kube_api.requests if r.path.endswith("/tokenreviews")]) == 1


def test_the_root_lives_in_the_secret_and_survives_a_restart(processes: ProcessGroup, nats: NatsServer,
                                                             tmp_path: Path, kubeconfig: Path,
                                                             kube_api: FakeKubeApiServer) -> None:
    kube_api.register_token("cart-sa-token", namespace="shop", service_account="cart", audiences=("istio-ca",))
    first = _start(processes, nats, tmp_path / "first", kubeconfig, name="citadel-1")
    root_pem = _secret_root(kube_api)
    first.process.stop()
    assert first.process.popen.returncode == 0, f"SIGTERM is a clean stop:\n{first.process.log()[-4000:]}"
    # Another state dir: the root can only have come back from the Secret.
    second = _start(processes, nats, tmp_path / "second", kubeconfig, name="citadel-2")
    assert _secret_root(kube_api) == root_pem
    _, csr = new_key_and_csr("ec-p256", CART)
    # The TLS handshake trusting the old root already proves the serving cert is under it.
    assert _signed_for(_call(second, root_pem, csr, "cart-sa-token"), root_pem) == [CART.uri]
    creates = [r for r in kube_api.requests if r.method == "POST" and r.path.endswith("/secrets")]
    assert len(creates) == 1, "the second citadel read the Secret instead of making a root"
