"""What Envoy applied, from its SDS ACKs: the roots every ROOTCA subscription took and the
roots of the certificates it may present (what the agent reports during a root rotation)."""

from __future__ import annotations

import datetime as dt

from libs.pki import fingerprint, key_pem
from services.agent.identity import WorkloadCert
from services.agent.sds_secrets import DEFAULT, ROOTCA, SecretStore
from services.agent.trust import TrustBundle
from tests.harness.pki import make_ca

NOW = dt.datetime.now(dt.UTC).timestamp()


def _cert(root_name: str) -> WorkloadCert:
    root, root_key = make_ca(root_name)
    leaf, leaf_key = make_ca(f"{root_name}-leaf", issuer=(root, root_key))
    return WorkloadCert(leaf, (leaf,), root, key_pem(leaf_key), NOW)


def test_applied_is_what_every_subscription_acked() -> None:
    store = SecretStore(TrustBundle(retention_s=100), clock=lambda: NOW)
    old = _cert("old")
    store.set_certificate(old)
    a = fingerprint(old.root)
    # Nothing subscribes to ROOTCA yet: the served roots count.
    assert store.applied().trusted == (a,) and store.applied().cert_roots == ()
    store.want("s1", frozenset({DEFAULT}))
    store.want("s2", frozenset({ROOTCA}))
    assert store.applied().trusted == (), "a ROOTCA subscription that has not ACKed has applied nothing"
    store.acked("s1", {DEFAULT: store.resources[DEFAULT]})
    store.acked("s2", {ROOTCA: store.resources[ROOTCA]})
    assert store.applied().trusted == (a,) and store.applied().cert_roots == (a,)

    new = _cert("new")
    b = fingerprint(new.root)
    store.set_roots([old.root, new.root])
    assert store.applied().trusted == (a,), "served, not yet ACKed"
    store.want("s3", frozenset({ROOTCA}))
    store.acked("s2", {ROOTCA: store.resources[ROOTCA]})
    assert store.applied().trusted == (), "s3 has not ACKed"
    store.acked("s3", {ROOTCA: store.resources[ROOTCA]})
    assert store.applied().trusted == (a, b)

    store.set_certificate(new)
    store.want("s4", frozenset({DEFAULT}))
    store.acked("s4", {DEFAULT: store.resources[DEFAULT]})
    assert store.applied().cert_roots == tuple(sorted((a, b))), "s1 still presents the old certificate"
    store.release("s1")
    assert store.applied().cert_roots == (b,)


def test_acks_and_closed_streams_call_the_listener() -> None:
    store = SecretStore(TrustBundle(retention_s=100), clock=lambda: NOW)
    calls: list[int] = []
    store.on_applied(lambda: calls.append(1))
    store.set_certificate(_cert("root"))
    store.want("s1", frozenset({DEFAULT}))
    store.acked("s1", {DEFAULT: store.resources[DEFAULT]})
    store.release("s1")
    assert len(calls) == 2
