"""Every analyzer finds the same problem wherever the config comes from, as `mizzenctl
analyze` gathers it (`tools/mizzenctl/analyze_inputs.py`):

- files alone (`-f` with `--use-mesh=false`);
- the live mesh alone (resources as galley's API returns them);
- files overlaid on the live mesh, where a file's resource replaces the live one.

In the overlay, the context a finding needs comes from the live mesh and the resource with
the problem from a file, and the other way round: a file that fixes a live problem clears
it.  Each case has the problem's resource broken and fixed; the platform (Services, pods)
is the same in every mode, since it comes from pilot's registry or from manifests alike.
IST0118 is about Kubernetes Services, not Istio config, so it has no mode to vary.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from libs.analysis import Analyzer, Inputs, analyze, authorization, destination_rules, gateways, mtls, schema
from libs.analysis import virtual_service_refs as refs
from libs.analysis import virtual_service_rules as rules
from libs.analysis.files import overlay, read_files
from libs.config import Resource
from tests.unit.analysis.cases import PLATFORM


@dataclass(frozen=True)
class Case:
    analyzer: Analyzer
    code: str
    # Resources the finding needs besides the one with the problem ("" for none).
    context: str
    broken: str
    fixed: str
    # Invalid config never reaches galley's store, so some problems exist only in files.
    can_be_live: bool = True


def vs(name: str, host: str, *, destination: str = "reviews", subset: str = "", gateways_: str = "") -> str:
    to = f"{{host: {destination}" + (f", subset: {subset}" if subset else "") + "}"
    attached = f"  gateways: [{gateways_}]\n" if gateways_ else ""
    return ("apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
            f"metadata: {{name: {name}, namespace: default}}\n"
            f"spec:\n  hosts: [{host}]\n{attached}  http:\n  - route: [{{destination: {to}}}]\n")


def gateway(name: str, selector: str, port: int, host: str) -> str:
    return (f"apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: {name}, namespace: default}}\n"
            f"spec:\n  selector: {{istio: {selector}}}\n  servers:\n"
            f"  - port: {{number: {port}, name: http, protocol: HTTP}}\n    hosts: ['{host}']\n")


def rule(spec: str) -> str:
    return ("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews, namespace: default}\n"
            f"spec:\n  host: reviews\n{spec}")


def peer(mode: str) -> str:
    return ("apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
            f"metadata: {{name: default, namespace: default}}\nspec:\n  mtls: {{mode: {mode}}}\n")


def policy(namespace: str) -> str:
    return ("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
            "metadata: {name: reviews-viewer, namespace: default}\n"
            "spec:\n  selector: {matchLabels: {app: reviews}}\n  action: ALLOW\n"
            f"  rules:\n  - from:\n    - source: {{namespaces: [{namespace}]}}\n")


DUPLICATE_MATCHES = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews}}]
  - match: [{headers: {end-user: {exact: jason}}}, {uri: {prefix: /v2}}]
    route: [{destination: {host: reviews}}]
  - route: [{destination: {host: reviews}}]
"""

# Weights that do not sum to 100: galley refuses it, so only a file can hold it.
WEIGHTS_OFF = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews}, weight: 40}
    - {destination: {host: ratings}, weight: 50}
"""

CASES = {
    "IST0101 destination host": Case(refs.DESTINATION_HOSTS, "IST0101", "",
                                     vs("reviews", "reviews", destination="ratings2"), vs("reviews", "reviews")),
    "IST0101 subset": Case(refs.DESTINATION_RULES, "IST0101", rule("  subsets: [{name: v1, labels: {version: v1}}]\n"),
                           vs("reviews", "reviews", subset="v4"), vs("reviews", "reviews", subset="v1")),
    "IST0132 gateway host": Case(refs.GATEWAYS, "IST0132",
                                 gateway("gw", "ingressgateway", 8080, "bookinfo.example.com"),
                                 vs("front", "other.example.com", gateways_="gw"),
                                 vs("front", "bookinfo.example.com", gateways_="gw")),
    "IST0109 mesh hosts": Case(rules.CONFLICTING_MESH_GATEWAY_HOSTS, "IST0109", vs("reviews", "reviews"),
                               vs("reviews-2", "reviews"), vs("reviews-2", "reviews", gateways_="gw")),
    "IST0131 matches": Case(rules.MATCHES, "IST0131", "", DUPLICATE_MATCHES, vs("reviews", "reviews")),
    "IST0104 gateway port": Case(gateways.INGRESS_GATEWAY_PORTS, "IST0104", "",
                                 gateway("gw", "ingressgateway", 80, "*"), gateway("gw", "ingressgateway", 8080, "*")),
    "IST0145 gateways": Case(gateways.CONFLICTING_GATEWAYS, "IST0145",
                             gateway("a", "ingressgateway", 8080, "*.example.com"),
                             gateway("b", "ingressgateway", 8080, "shop.example.com"),
                             gateway("b", "ingressgateway", 9090, "shop.example.com")),
    "IST0128 ca certificates": Case(destination_rules.CA_CERTIFICATES, "IST0128", "",
                                    rule("  trafficPolicy:\n    tls: {mode: SIMPLE}\n"),
                                    rule("  trafficPolicy:\n    tls: {mode: SIMPLE, caCertificates: /ca.pem}\n")),
    "IST0173 subset pods": Case(destination_rules.SUBSET_SELECTS_PODS, "IST0173", "",
                                rule("  subsets: [{name: v4, labels: {version: v4}}]\n"),
                                rule("  subsets: [{name: v1, labels: {version: v1}}]\n")),
    "IST0113 mtls": Case(mtls.MTLS, "IST0113", peer("STRICT"), rule("  trafficPolicy:\n    tls: {mode: DISABLE}\n"),
                         rule("  trafficPolicy:\n    tls: {mode: ISTIO_MUTUAL}\n")),
    "IST0101 authorization namespace": Case(authorization.AUTHORIZATION_POLICIES, "IST0101", "", policy("shop"),
                                            policy("default")),
    "IST0106 schema": Case(schema.SCHEMA, "IST0106", "", WEIGHTS_OFF, vs("reviews", "reviews"), can_be_live=False),
}


def from_galley(text: str) -> list[Resource]:
    """Resources as `mizzenctl analyze` gets them from the live mesh: galley's JSON."""
    read = read_files([("live.yaml", text.encode())]) if text else None
    return [Resource.from_dict(r.to_dict()) for r in read.resources] if read else []


def codes(case: Case, *, live: str = "", files: str = "") -> set[str]:
    read = read_files([("config.yaml", files.encode())]) if files else read_files([])
    assert not read.errors, read.errors
    platform = read_files([("platform.yaml", PLATFORM.encode())]).platform
    inputs = Inputs(overlay(from_galley(live), read.resources), platform, read.origins, read.invalid)
    return {message.code for message in analyze(inputs, [case.analyzer])}


def joined(*documents: str) -> str:
    return "---\n".join(d for d in documents if d)


@pytest.mark.parametrize("name", list(CASES))
def test_files_alone(name: str) -> None:
    case = CASES[name]
    assert case.code in codes(case, files=joined(case.context, case.broken))
    assert case.code not in codes(case, files=joined(case.context, case.fixed))


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.can_be_live])
def test_the_live_mesh_alone(name: str) -> None:
    case = CASES[name]
    assert case.code in codes(case, live=joined(case.context, case.broken))
    assert case.code not in codes(case, live=joined(case.context, case.fixed))


@pytest.mark.parametrize("name", list(CASES))
def test_files_overlaid_on_the_live_mesh(name: str) -> None:
    case = CASES[name]
    # The live mesh holds the context and the fixed resource; a file brings the problem.
    assert case.code in codes(case, live=joined(case.context, case.fixed), files=case.broken)
    if case.can_be_live:
        # A file that fixes what the live mesh holds clears the finding.
        assert case.code not in codes(case, live=joined(case.context, case.broken), files=case.fixed)
