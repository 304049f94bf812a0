"""What galley's apply answers beyond validation: the analyzers' findings about the
applied resources (and only those), as warnings and as HTTP `Warning` headers."""

from __future__ import annotations

from libs.analysis import Platform, Workload
from libs.config import parse_text
from services.galley.analysis import findings
from services.galley.api import MAX_WARNING_HEADER_BYTES, warning_headers

LIVE = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: old, namespace: default}
spec:
  hosts: [old]
  http: [{route: [{destination: {host: gone}}]}]
"""
APPLIED = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v1}}]
  - route: [{destination: {host: ratings2}}]
"""
PLATFORM = Platform(workloads=(Workload("reviews-v1", "default", (("app", "reviews"), ("version", "v1"))),))


def resources(text: str) -> list:
    return [r for _, r in parse_text(text, "test").resources]


def test_findings_name_the_applied_resources_only_and_leave_validation_its_own() -> None:
    lines = findings(resources(LIVE), resources(APPLIED), PLATFORM)
    # The live VirtualService's dangling host is not this apply's business; the unreachable
    # second rule is validation's warning already (IST0130 left out).
    assert lines == [
        'Error [IST0101] (VirtualService default/reviews) Referenced host not found: "ratings2"',
        'Error [IST0101] (VirtualService default/reviews) Referenced host+subset in destinationrule not found: '
        '"reviews+v1"',
    ]


def test_without_a_platform_only_config_checks_run() -> None:
    assert findings(resources(LIVE), resources(APPLIED), None) == [
        'Error [IST0101] (VirtualService default/reviews) Referenced host+subset in destinationrule not found: '
        '"reviews+v1"']


def test_warnings_become_rfc7234_headers_within_a_budget() -> None:
    headers = warning_headers(['Referenced host not found: "x"', "caf\u00e9\nline"])
    assert headers.getlist("warning") == ['299 - "Referenced host not found: \\"x\\""', '299 - "caf\\\\xe9 line"']
    many = warning_headers(["w" * 1000] * 20)
    values = many.getlist("warning")
    assert sum(len(v) for v in values[:-1]) <= MAX_WARNING_HEADER_BYTES
    assert values[-1] == f'299 - "{20 - len(values) + 1} more warning(s) in the response body"'
