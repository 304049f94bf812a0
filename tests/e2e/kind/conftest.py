"""One kind cluster for this package, deleted after its last test: Mizzen from
deploy/kubernetes/overlays/kind, Bookinfo from samples/bookinfo/platform/kube/bookinfo.yaml
in a namespace labelled istio-injection=enabled.  Skipped, with the reason, where kind, a
Docker engine or kind's node image cannot be had (these machines reach no image registry)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.kind.cluster import BookinfoOnKind, KindCluster, Unavailable, port_forward
from tests.harness.debian import debian_tool


@pytest.fixture(scope="package")
def kind_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KindCluster]:
    kubectl = debian_tool("kubectl", "kubernetes-client")
    try:
        cluster = KindCluster.require(tmp_path_factory.mktemp("kind"), kubectl)
    except Unavailable as missing:
        pytest.skip(f"no kind cluster here: {missing}")
    try:
        cluster.create()
        cluster.load_images()
        cluster.install_mizzen()
        cluster.install_bookinfo()
        yield cluster
    finally:
        cluster.delete()


@pytest.fixture(scope="package")
def bookinfo_on_kind(kind_cluster: KindCluster) -> Iterator[BookinfoOnKind]:
    with port_forward(kind_cluster, "svc/istio-pilot", 15014) as pilot_url:
        mesh = BookinfoOnKind(kind_cluster, pilot_url)
        mesh.sync(None, timeout=120)
        yield mesh


@pytest.fixture
def bookinfo(bookinfo_on_kind: BookinfoOnKind) -> Iterator[BookinfoOnKind]:
    """Each task starts from Bookinfo with its subsets and no task VirtualService."""
    bookinfo_on_kind.reset()
    try:
        yield bookinfo_on_kind
    finally:
        bookinfo_on_kind.reset()
