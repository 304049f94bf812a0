"""The agent's checks on citadel's answer, and when it renews."""

from __future__ import annotations

import datetime as dt

import pytest

from libs.pki import SpiffeId, parse_key_type
from services.agent.errors import InvalidCertificateResponse
from services.agent.identity import accept_response, new_key_and_csr
from services.citadel.ca import CertificateAuthority, IssuancePolicy, check_csr, self_signed_root

ME = SpiffeId("cluster.local", "shop", "cart")


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    now = dt.datetime.now(dt.UTC)
    return CertificateAuthority(self_signed_root(parse_key_type("ec-p256"), "cluster.local", now=now),
                                IssuancePolicy())


def test_a_good_answer_is_accepted_and_rotates_at_the_fraction(ca: CertificateAuthority) -> None:
    key, csr = new_key_and_csr("ec-p256", ME)
    chain = list(ca.sign_workload(check_csr(csr), ME, 100).chain)
    received = dt.datetime.now(dt.UTC).timestamp()
    cert = accept_response(chain, key, ME, received_at=received)
    assert cert.root == ca.bundle.root
    assert cert.chain == (cert.leaf,)
    assert b"PRIVATE KEY" in cert.key_pem
    assert cert.rotate_at(0.5) == pytest.approx(received + 50, abs=1.5)


def test_an_answer_for_another_key_is_refused(ca: CertificateAuthority) -> None:
    _, csr = new_key_and_csr("ec-p256", ME)
    other_key, _ = new_key_and_csr("ec-p256", ME)
    chain = list(ca.sign_workload(check_csr(csr), ME, 100).chain)
    with pytest.raises(InvalidCertificateResponse, match="not for the key in our CSR"):
        accept_response(chain, other_key, ME, received_at=0)


def test_an_answer_for_another_identity_is_refused(ca: CertificateAuthority) -> None:
    other = SpiffeId("cluster.local", "shop", "payments")
    key, csr = new_key_and_csr("ec-p256", other)
    chain = list(ca.sign_workload(check_csr(csr), other, 100).chain)
    with pytest.raises(InvalidCertificateResponse, match=r"names .*payments.*, not spiffe://cluster\.local/ns/shop/sa/cart"):
        accept_response(chain, key, ME, received_at=0)


def test_a_chain_that_does_not_hang_together_is_refused(ca: CertificateAuthority) -> None:
    key, csr = new_key_and_csr("ec-p256", ME)
    leaf = ca.sign_workload(check_csr(csr), ME, 100).chain[0]
    stranger = CertificateAuthority(self_signed_root(parse_key_type("ec-p256"), "cluster.local",
                                                     now=dt.datetime.now(dt.UTC)), IssuancePolicy())
    with pytest.raises(InvalidCertificateResponse, match="not signed by the next in the chain"):
        accept_response([leaf, stranger.bundle.chain_after_leaf()[-1]], key, ME, received_at=0)
    with pytest.raises(InvalidCertificateResponse, match="without the chain to its root"):
        accept_response([leaf], key, ME, received_at=0)
    with pytest.raises(InvalidCertificateResponse, match="empty certificate chain"):
        accept_response([], key, ME, received_at=0)
