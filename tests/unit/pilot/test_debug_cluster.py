"""`/debug/syncz`'s cluster_id: the registry the proxy's workload is registered in (what
`mizzenctl proxy-status` shows as CLUSTER), else the CLUSTER_ID its metadata claims."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from services.pilot import debug
from services.pilot.model.proxy import NodeType, Proxy
from services.pilot.model.registry import KUBERNETES, RegistryContents
from services.pilot.model.serviceentry import WorkloadInstance


def connection(pod: str, ip: str, namespace: str = "default", **metadata: Any) -> Any:
    proxy = Proxy(id=f"sidecar~{ip}~{pod}.{namespace}~{namespace}.svc.cluster.local", type=NodeType.SIDECAR, ip=ip,
                  pod=pod, namespace=namespace, dns_domain=f"{namespace}.svc.cluster.local", metadata=metadata)
    return SimpleNamespace(proxy=proxy)


REGISTRIES = [
    RegistryContents("mesh-workloads", workloads=(WorkloadInstance("productpage-v1", "default", "127.0.10.1", ()),)),
    RegistryContents(KUBERNETES, workloads=(WorkloadInstance("reviews-v1-7d9c", "default", "10.8.0.4", ()),
                                            WorkloadInstance("productpage-v1", "default", "10.8.0.9", ()))),
]


def test_the_registry_holding_the_workload_is_its_cluster() -> None:
    index = debug.registry_index(REGISTRIES)
    claims = {"CLUSTER_ID": "Kubernetes"}
    assert debug.cluster_id(connection("productpage-v1", "127.0.10.1", **claims), index) == \
        ("mesh-workloads", "mesh-workloads")
    assert debug.cluster_id(connection("reviews-v1-7d9c", "10.8.0.4"), index) == (KUBERNETES, KUBERNETES)


def test_a_workload_is_found_by_its_address_when_its_name_differs() -> None:
    index = debug.registry_index(REGISTRIES)
    assert debug.cluster_id(connection("reviews-v1", "10.8.0.4"), index) == (KUBERNETES, KUBERNETES)
    # Same address, another namespace: not the same workload.
    assert debug.cluster_id(connection("reviews-v1", "10.8.0.4", namespace="shop"), index) == ("", None)


def test_a_proxy_no_registry_knows_keeps_what_its_metadata_claims() -> None:
    index = debug.registry_index(REGISTRIES)
    assert debug.cluster_id(connection("vm-1", "192.168.1.7", CLUSTER_ID="vm-network"), index) == ("vm-network", None)
