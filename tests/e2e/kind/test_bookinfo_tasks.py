"""Istio's Bookinfo tasks on a kind cluster: the control plane from deploy/kubernetes, every
Bookinfo pod injected by the webhook, mutual TLS with identities from citadel, and the same
task checks as every other way Mizzen runs (tests/e2e/bookinfo_tasks.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e import bookinfo_tasks
from tests.e2e.kind.cluster import NAMESPACE, BookinfoOnKind, KindCluster

# A cluster and its rollouts take minutes: the first test carries the session fixture's setup.
pytestmark = [pytest.mark.e2e, pytest.mark.kind, pytest.mark.timeout(1800)]


def test_every_bookinfo_pod_was_injected(kind_cluster: KindCluster) -> None:
    pods = kind_cluster.pods(NAMESPACE)
    assert len(pods) == 6
    for pod in pods:
        containers = [c["name"] for c in pod["spec"]["containers"]]
        assert "istio-proxy" in containers, pod["metadata"]["name"]
        assert [c["name"] for c in pod["spec"].get("initContainers", [])] == ["istio-init"]
        assert "sidecar.istio.io/status" in pod["metadata"]["annotations"]
    # citadel put its root where the sidecars mount it.
    kind_cluster.kubectl_run("-n", NAMESPACE, "get", "configmap", "istio-ca-root-cert")


INVALID_VIRTUAL_SERVICE = """\
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: reviews-invalid}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 40
    - destination: {host: reviews, subset: v2}
      weight: 50
"""


def test_kubectl_apply_of_invalid_config_is_refused_by_galleys_webhook(kind_cluster: KindCluster) -> None:
    refused = kind_cluster.kubectl_run("-n", NAMESPACE, "apply", "-f", "-", check=False,
                                       stdin=INVALID_VIRTUAL_SERVICE)
    assert refused.returncode != 0, refused.stdout
    assert ('admission webhook "pilot.validation.istio.io" denied the request: VirtualService '
            f"{NAMESPACE}/reviews-invalid: spec.http[0].route: weights sum to 90, must be 100") in refused.stderr
    stored = kind_cluster.kubectl_run("-n", NAMESPACE, "get", "virtualservices", "-o", "name").stdout.split()
    assert "virtualservice.networking.istio.io/reviews-invalid" not in stored


def test_productpage_through_the_ingress_gateway(bookinfo: BookinfoOnKind) -> None:
    bookinfo_tasks.check_productpage(bookinfo)


@pytest.mark.parametrize("check", bookinfo_tasks.CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_bookinfo_task(bookinfo: BookinfoOnKind, check: Callable[[BookinfoOnKind], None]) -> None:
    check(bookinfo)
