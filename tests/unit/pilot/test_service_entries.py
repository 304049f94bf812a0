"""ServiceEntries over changing workloads: a push that follows another selects anew only
for the entries a changed workload matches, and comes to what a build from scratch does."""

from __future__ import annotations

import random
from dataclasses import replace

from libs.config import parse_text
from services.pilot.model import serviceentry
from services.pilot.model.serviceentry import WorkloadInstance

ENTRIES = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: a, namespace: one}
spec:
  hosts: [a.one.svc.cluster.local, shared.example.com]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 8080}, {number: 9090, name: grpc, protocol: GRPC}]
  workloadSelector: {labels: {app: a}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: b, namespace: one}
spec:
  hosts: [b.one.svc.cluster.local, shared.example.com]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: b, tier: back}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: everyone, namespace: two}
spec:
  hosts: [everyone.two.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  workloadSelector: {labels: {}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: inline, namespace: two}
spec:
  hosts: [inline.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 443, name: tls, protocol: TLS}]
  endpoints: [{address: 192.0.2.1}]
"""


def entries() -> list:
    result = parse_text(ENTRIES, "test")
    assert result.ok, result.errors()
    return sorted((r for _, r in result.resources), key=lambda r: (r.namespace, r.name))


def random_workload(rng: random.Random, n: int) -> WorkloadInstance:
    labels = {"app": rng.choice(["a", "b", "c"])}
    if rng.random() < 0.5:
        labels["tier"] = rng.choice(["back", "front"])
    return WorkloadInstance(name=f"w{n}", namespace=rng.choice(["one", "two", "three"]),
                            address=f"10.0.{n // 250}.{n % 250}", labels=tuple(sorted(labels.items())),
                            ports=(("http", 7070),) if rng.random() < 0.3 else (), sidecar=rng.random() < 0.5)


def test_a_following_build_comes_to_what_a_build_from_scratch_does() -> None:
    rng = random.Random(7)
    resources = entries()
    workloads = [random_workload(rng, n) for n in range(40)]
    previous = serviceentry.build(resources, workloads)
    for step in range(300):
        roll = rng.random()
        if roll < 0.3 and workloads:
            workloads.pop(rng.randrange(len(workloads)))
        elif roll < 0.6:
            workloads.insert(rng.randrange(len(workloads) + 1), random_workload(rng, 100 + step))
        elif workloads:
            i = rng.randrange(len(workloads))
            workloads[i] = replace(workloads[i], locality=f"zone-{step}")
        if rng.random() < 0.1:
            # As WorkloadEntries are: read anew each push, equal but not the same objects.
            workloads = [replace(w) for w in workloads]
        following = serviceentry.build(resources, workloads, previous)
        scratch = serviceentry.build(resources, workloads)
        assert following.services == scratch.services
        assert following.endpoints == scratch.endpoints, f"step {step}"
        assert list(following.endpoints) == list(scratch.endpoints)
        previous = following


def test_endpoints_no_changed_workload_selects_stay_the_very_tuples() -> None:
    resources = entries()
    workloads = [WorkloadInstance("a-1", "one", "10.0.0.1", (("app", "a"),)),
                 WorkloadInstance("b-1", "one", "10.0.0.2", (("app", "b"), ("tier", "back"))),
                 WorkloadInstance("x-1", "two", "10.0.0.3", (("app", "x"),))]
    first = serviceentry.build(resources, workloads)
    second = serviceentry.build(resources, [*workloads, WorkloadInstance("a-2", "one", "10.0.0.4", (("app", "a"),))],
                                first)
    assert second.services is first.services, "services do not depend on workloads"
    assert second.endpoints[("b.one.svc.cluster.local", 80)] is first.endpoints[("b.one.svc.cluster.local", 80)]
    assert second.endpoints[("everyone.two.svc.cluster.local", 80)] is \
        first.endpoints[("everyone.two.svc.cluster.local", 80)]
    assert [e.address for e in second.endpoints[("a.one.svc.cluster.local", 80)]] == ["10.0.0.1", "10.0.0.4"]
    # `shared.example.com` is entry a's (the first to name it), so it follows a's workloads.
    assert [e.address for e in second.endpoints[("shared.example.com", 80)]] == ["10.0.0.1", "10.0.0.4"]
    assert [e.port for e in second.endpoints[("a.one.svc.cluster.local", 80)]] == [8080, 8080]


def test_other_entries_or_many_changes_build_from_scratch() -> None:
    resources = entries()
    workloads = [WorkloadInstance(f"a-{n}", "one", f"10.0.1.{n}", (("app", "a"),)) for n in range(3)]
    first = serviceentry.build(resources, workloads)
    assert serviceentry.build(resources[:-1], workloads, first).services is not first.services
    many = [WorkloadInstance(f"a-{n}", "one", f"10.0.2.{n}", (("app", "a"),))
            for n in range(serviceentry.RESELECT_AT_MOST + 1)]
    rebuilt = serviceentry.build(resources, many, first)
    assert rebuilt.services is not first.services
    assert rebuilt.endpoints == serviceentry.build(resources, many).endpoints
