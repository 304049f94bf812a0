"""A synthetic mix of resources, shaped like a mid-size mesh's config."""

from __future__ import annotations

from pathlib import Path

SERVICE_ENTRY = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: svc-{i}, namespace: ns-{ns}}}
spec:
  hosts: [svc-{i}.ns-{ns}.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 8080, name: http, protocol: HTTP}}, {{number: 9090, name: grpc, protocol: GRPC}}]
  endpoints:
  - {{address: 10.{a}.{b}.1, labels: {{app: svc-{i}, version: v1}}}}
  - {{address: 10.{a}.{b}.2, labels: {{app: svc-{i}, version: v2}}}}
"""
DESTINATION_RULE = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: svc-{i}, namespace: ns-{ns}}}
spec:
  host: svc-{i}
  trafficPolicy:
    connectionPool: {{tcp: {{maxConnections: 100}}, http: {{http1MaxPendingRequests: 10}}}}
    outlierDetection: {{consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s}}
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
"""
VIRTUAL_SERVICE = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: svc-{i}, namespace: ns-{ns}}}
spec:
  hosts: [svc-{i}]
  http:
  - match: [{{headers: {{end-user: {{exact: jason}}}}, uri: {{prefix: /api}}}}]
    route: [{{destination: {{host: svc-{i}, subset: v2}}}}]
    retries: {{attempts: 3, perTryTimeout: 2s, retryOn: "5xx,connect-failure"}}
    timeout: 10s
  - route:
    - {{destination: {{host: svc-{i}, subset: v1}}, weight: 90}}
    - {{destination: {{host: svc-{i}, subset: v2}}, weight: 10}}
"""
KINDS = (SERVICE_ENTRY, DESTINATION_RULE, VIRTUAL_SERVICE)


def write(directory: Path, total: int, per_file: int = 100) -> int:
    """Write `total` resources (a third of each kind) into files of `per_file` documents."""
    directory.mkdir(parents=True, exist_ok=True)
    documents = []
    for n in range(total):
        i = n // len(KINDS)
        documents.append(KINDS[n % len(KINDS)].format(i=i, ns=i % 20, a=(i // 250) % 250, b=i % 250))
    for start in range(0, total, per_file):
        (directory / f"config-{start // per_file:04d}.yaml").write_text("---\n".join(documents[start:start + per_file]))
    return total
