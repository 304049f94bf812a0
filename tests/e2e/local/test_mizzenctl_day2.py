"""istioctl's day-2 commands against the running local mesh, as a user types them:
`proxy-config secret|bootstrap|log|all`, `x describe pod|service`, `version`,
`bug-report`, `proxy-status`'s CLUSTER, and `apply` refusing kinds Mizzen does not serve."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from tests.e2e.local.conftest import SAMPLES, SECURITY_SAMPLES
from tests.harness.http import HTTP
from tests.harness.local_mesh import LocalMesh

pytestmark = pytest.mark.e2e

PROXIES = 8
STRICT_DEFAULT = """\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec:
  mtls: {mode: STRICT}
"""


def test_proxy_config_secret_shows_the_certificates_envoy_holds(local_mesh: LocalMesh) -> None:
    table = local_mesh.mizzenctl("proxy-config", "secret", "productpage-v1.default").stdout.splitlines()
    assert table[0].split() == ["RESOURCE", "NAME", "TYPE", "STATUS", "VALID", "CERT", "SERIAL", "NUMBER", "NOT",
                                "AFTER", "NOT", "BEFORE", "SPIFFE", "ID"]
    default = table[1].split()
    assert default[:5] == ["default", "Cert", "Chain", "ACTIVE", "true"]
    assert default[-1] == "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
    assert table[2].split()[:4] == ["ROOTCA", "CA", "ACTIVE", "true"]
    items = json.loads(local_mesh.mizzenctl("proxy-config", "secret", "productpage-v1.default", "-o", "json").stdout)
    assert [(i["resource_name"], i["cert_valid"]) for i in items] == [("default", True), ("ROOTCA", True)]
    # The serial is the one Envoy's own /certs reports for the certificate it serves.
    certs = HTTP.get(f"http://{local_mesh.address_of('productpage-v1')}:15000/certs", timeout=5).json()
    served = {c["serial_number"] for entry in certs["certificates"] for c in entry.get("cert_chain", [])}
    assert items[0]["serial_number"] in served


def test_proxy_config_bootstrap_and_all(local_mesh: LocalMesh) -> None:
    short = local_mesh.mizzenctl("proxy-config", "bootstrap", "reviews-v1.default", "-o", "short").stdout
    assert short.startswith("Mizzen Version: ") and "\nEnvoy Version:  1." in short
    bootstrap = json.loads(local_mesh.mizzenctl("proxy-config", "bootstrap", "reviews-v1.default").stdout)
    assert bootstrap["bootstrap"]["node"]["id"].startswith(f"sidecar~{local_mesh.address_of('reviews-v1')}~reviews-v1")
    everything = local_mesh.mizzenctl("proxy-config", "all", "reviews-v1.default").stdout
    for header in ("Envoy Version:", "SERVICE FQDN", "ADDRESS", "VHOST NAME", "RESOURCE NAME", "ENDPOINT"):
        assert header in everything
    dump = local_mesh.mizzenctl("proxy-config", "all", "reviews-v1.default", "-o", "json").stdout
    assert '"private_key": "[redacted]"' in dump and "PRIVATE KEY" not in dump


def test_proxy_config_log_reads_and_sets_envoys_levels(local_mesh: LocalMesh) -> None:
    admin = f"http://{local_mesh.address_of('details-v1')}:15000/logging"
    try:
        changed = local_mesh.mizzenctl("proxy-config", "log", "details-v1.default", "--level", "http:debug,router:info")
        assert changed.stdout.startswith("details-v1.default:\nactive loggers:\n")
        assert "  http: debug\n" in changed.stdout and "  router: info\n" in changed.stdout
        assert "  http: debug\n" in HTTP.post(admin, timeout=5).text, "Envoy itself runs the new level"
        refused = local_mesh.mizzenctl("proxy-config", "log", "details-v1.default", "--level", "htp:debug",
                                       check=False)
        assert refused.returncode == 2 and "unrecognized logger name 'htp'" in refused.stderr
    finally:
        local_mesh.mizzenctl("proxy-config", "log", "details-v1.default", "-r")
    levels = json.loads(local_mesh.mizzenctl("proxy-config", "log", "details-v1.default", "-o", "json").stdout)
    assert set(levels.values()) == {"warning"}


def test_describe_pod_and_service(bookinfo: LocalMesh, tmp_path: Path) -> None:
    reviews = bookinfo.mizzenctl("x", "describe", "pod", "reviews-v1").stdout
    assert 'DestinationRule: reviews for "reviews"\n   Matching subsets: v1\n      (Non-matching subsets v2,v3)\n' \
        in reviews
    assert "   Registry: mesh-workloads\n" in reviews
    assert "   Clients' mTLS: auto (ISTIO_MUTUAL to endpoints with a sidecar" in reviews
    assert "Effective PeerAuthentication:\n   Workload mTLS mode: PERMISSIVE\n" in reviews
    strict = tmp_path / "strict.yaml"
    strict.write_text(STRICT_DEFAULT)
    bookinfo.apply(SAMPLES / "virtual-service-reviews-test-v2.yaml", SECURITY_SAMPLES / "productpage-viewer.yaml",
                   strict)
    productpage = bookinfo.mizzenctl("x", "describe", "pod", "productpage-v1.default").stdout
    assert "Effective PeerAuthentication:\n   Workload mTLS mode: STRICT\nApplied PeerAuthentication:\n" \
           "   default.default\n" in productpage
    assert "Applied AuthorizationPolicy:\n   productpage-viewer.default (ALLOW)\n" in productpage
    assert productpage.endswith(
        f"Exposed on Ingress Gateway http://127.{bookinfo.subnet}.1.1:8080\nGateway: bookinfo-gateway\n"
        "VirtualService: bookinfo\n"
        "   Match: /productpage, Match: /static*, Match: /login, Match: /logout, Match: /api/v1/products*\n")
    service = bookinfo.mizzenctl("x", "describe", "service", "reviews").stdout
    assert service.startswith("Service: reviews\n   Port: http 9080/HTTP targets pod port 9080\n")
    assert "   Matching subsets: v1,v2,v3\n" in service
    assert "VirtualService: reviews\n   Match: when headers are end-user=jason\n" in service
    missing = bookinfo.mizzenctl("x", "describe", "pod", "nope", check=False)
    assert missing.returncode == 1 and "pods 'nope' not found" in missing.stderr


def test_version_names_every_component_and_proxy(local_mesh: LocalMesh) -> None:
    lines = local_mesh.mizzenctl("version").stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["client version", "control plane version",
                                                      "data plane version", "envoy version"]
    assert lines[2].endswith(f"({PROXIES} proxies)") and lines[3].startswith("envoy version: 1.")
    body = json.loads(local_mesh.mizzenctl("version", "-o", "json").stdout)
    assert {c["Component"] for c in body["meshVersion"]} == {"galley", "pilot", "citadel", "telemetry", "policy"}
    assert {c["Info"]["version"] for c in body["meshVersion"]} == {body["clientVersion"]["version"]}
    assert len(body["dataPlaneVersion"]) == PROXIES


def test_proxy_status_shows_the_registry_each_proxy_came_from(local_mesh: LocalMesh) -> None:
    rows = [line.split() for line in local_mesh.mizzenctl("proxy-status").stdout.splitlines()[1:]]
    assert len(rows) == PROXIES
    assert {row[1] for row in rows} == {"mesh-workloads"}


def test_bug_report_archives_config_proxies_and_logs_without_secrets(local_mesh: LocalMesh, tmp_path: Path) -> None:
    target = tmp_path / "report.tar.gz"
    made = local_mesh.mizzenctl("bug-report", "--output", str(target))
    assert made.stdout.startswith(f"wrote {target} (")
    with tarfile.open(target) as tar:
        files = {member.name: tar.extractfile(member).read().decode()  # type: ignore[union-attr]
                 for member in tar.getmembers()}
    for name in ("summary.txt", "version.json", "mesh.json", "config/Gateway.yaml", "config/MeshConfig.yaml",
                 "pilot/syncz.json", "pilot/push_status.json", "pilot/registryz.json",
                 "proxies/productpage-v1.default/config_dump.json",
                 "proxies/istio-ingressgateway.istio-system/pilot_config_dump.json", "logs/pilot.log",
                 "logs/proxies/productpage-v1-envoy.log"):
        assert f"bug-report/{name}" in files, name
    assert "everything asked for was collected" in files["bug-report/summary.txt"]
    dump = json.loads(files["bug-report/proxies/productpage-v1.default/config_dump.json"])
    secrets = next(c for c in dump["configs"] if c["@type"].endswith("SecretsConfigDump"))
    assert secrets["dynamic_active_secrets"][0]["secret"]["tls_certificate"]["private_key"] == "[redacted]"
    credentials = [(local_mesh.state_dir / "galley-token").read_text().strip()]
    credentials += [path.read_text().strip() for path in (local_mesh.state_dir / "tokens").iterdir()]
    for name, text in files.items():
        assert "PRIVATE KEY-----" not in text, name
        assert not any(credential in text for credential in credentials), name


UNSUPPORTED = """\
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: lua, namespace: default}
spec: {}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: unsupported-check, namespace: default}
spec:
  hosts: [unsupported-check.example.com]
  http: [{route: [{destination: {host: details}}]}]
"""


def test_apply_refuses_kinds_mizzen_does_not_serve(local_mesh: LocalMesh, tmp_path: Path) -> None:
    config = tmp_path / "mixed.yaml"
    config.write_text(UNSUPPORTED)
    refused = local_mesh.mizzenctl("apply", "-f", str(config), check=False)
    assert refused.returncode == 1
    assert f"error: {config}[0]: EnvoyFilter default/lua: unsupported kind EnvoyFilter" in refused.stderr
    assert local_mesh.mizzenctl("get", "virtualservices", "unsupported-check", check=False).returncode == 1
    try:
        applied = local_mesh.mizzenctl("apply", "--skip-unsupported", "-f", str(config))
        assert applied.stdout == "VirtualService default/unsupported-check created\n"
        assert "skipped: " in applied.stderr and "EnvoyFilter default/lua" in applied.stderr
        assert "unsupported-check" in local_mesh.mizzenctl("get", "virtualservices").stdout
    finally:
        local_mesh.mizzenctl("delete", "-f", str(config), check=False)
