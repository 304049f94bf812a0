"""The app probers the injector hands the agent (ISTIO_KUBE_APP_PROBERS): parsed, or refused
with the setting and the path named; and what the agent sends the app for an HTTP probe."""

from __future__ import annotations

import json

import pytest

from libs.runtime import load_settings
from services.agent.app_probers import AppProbe, Grpc, HttpGet, TcpSocket, parse_app_probers
from services.agent.app_probing import destination, request_headers
from services.agent.errors import AppProbersError, ConfigurationError
from services.agent.settings import AgentSettings


def test_istio_shaped_probers_parse() -> None:
    raw = json.dumps({
        "/app-health/web/readyz": {"httpGet": {"path": "/health", "port": 8080, "scheme": "HTTPS",
                                               "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
                                   "timeoutSeconds": 3, "periodSeconds": 10},
        "/app-health/web/livez": {"tcpSocket": {"port": 8080}, "timeoutSeconds": 1},
        "/app-health/api/startupz": {"grpc": {"port": 9090, "service": "api"}},
        "/app-health/api/readyz": {"httpGet": {"path": "ready?full=1", "port": 9091}, "timeoutSeconds": 0},
    })
    assert parse_app_probers(raw) == {
        "/app-health/web/readyz": AppProbe("/app-health/web/readyz",
                                           HttpGet(8080, "/health", "HTTPS", (("X-Probe", "1"),)), 3),
        "/app-health/web/livez": AppProbe("/app-health/web/livez", TcpSocket(8080), 1),
        # Kubernetes' defaults: 1 s when absent or 0; gRPC service "" is the whole server.
        "/app-health/api/startupz": AppProbe("/app-health/api/startupz", Grpc(9090, "api"), 1),
        "/app-health/api/readyz": AppProbe("/app-health/api/readyz", HttpGet(9091, "/ready?full=1"), 1),
    }


def test_empty_setting_means_no_probes() -> None:
    assert parse_app_probers("") == {}
    assert parse_app_probers("  ") == {}
    assert parse_app_probers("{}") == {}


@pytest.mark.parametrize(("raw", "message"), [
    ('{"/app-health/web/readyz": ', "not valid JSON: Expecting value"),
    ("[]", "must be a JSON object keyed by /app-health/ paths, not a list"),
    ('{"/healthz": {"tcpSocket": {"port": 1}}}', "'/healthz': not a path of the form /app-health/"),
    ('{"/app-health/web/deadz": {"tcpSocket": {"port": 1}}}', "not a path of the form"),
    ('{"/app-health/web/readyz": {"exec": {"command": ["true"]}}}', "needs exactly one of httpGet, tcpSocket or grpc"),
    ('{"/app-health/web/readyz": {"tcpSocket": {"port": 1}, "grpc": {"port": 2}}}', r"\(has tcpSocket, grpc\)"),
    ('{"/app-health/web/readyz": {"httpGet": {"port": "http"}}}',
     r"/app-health/web/readyz.httpGet.port: 'http' must be a number \(the injector resolves named ports\)"),
    ('{"/app-health/web/readyz": {"tcpSocket": {"port": 70000}}}', "must be a port number 1-65535"),
    ('{"/app-health/web/readyz": {"httpGet": {"port": 80, "scheme": "FTP"}}}', "'FTP' is not HTTP or HTTPS"),
    ('{"/app-health/web/readyz": {"httpGet": {"port": 80, "httpHeaders": [{"value": "v"}]}}}',
     r"httpHeaders\[0\]: must be \{name, value\} strings"),
    ('{"/app-health/web/readyz": {"tcpSocket": {"port": 80}, "timeoutSeconds": -1}}', "timeoutSeconds: must be"),
    ('{"/app-health/web/readyz": {"grpc": {"port": 80, "service": 7}}}', "grpc.service: must be a string"),
])
def test_unusable_probers_name_the_setting_and_the_path(raw: str, message: str) -> None:
    with pytest.raises(AppProbersError, match=message) as caught:
        parse_app_probers(raw)
    assert str(caught.value).startswith("setting kube_app_probers (from --kube-app-probers, "
                                        "MIZZEN_KUBE_APP_PROBERS or ISTIO_KUBE_APP_PROBERS): ")
    assert isinstance(caught.value, ConfigurationError), "fatal at start, like every agent setting that cannot work"


def test_the_setting_reads_istios_variable_and_prefers_its_own() -> None:
    istio = '{"/app-health/a/livez": {"tcpSocket": {"port": 1}}}'
    ours = '{"/app-health/b/livez": {"tcpSocket": {"port": 2}}}'
    assert load_settings(AgentSettings, [], {"ISTIO_KUBE_APP_PROBERS": istio}, prog="x").kube_app_probers == istio
    both = {"ISTIO_KUBE_APP_PROBERS": istio, "MIZZEN_KUBE_APP_PROBERS": ours}
    assert load_settings(AgentSettings, [], both, prog="x").kube_app_probers == ours
    localhost = {"REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION": "true"}
    assert load_settings(AgentSettings, [], localhost, prog="x").app_probe_localhost is True


def test_probes_go_to_the_pod_address_or_to_localhost() -> None:
    assert destination("10.1.2.3", localhost=False) == "10.1.2.3"
    assert destination("10.1.2.3", localhost=True) == "127.0.0.1"
    assert destination("fd00::3", localhost=True) == "::1"


def test_the_app_gets_the_kubelets_headers_with_its_own_port_and_the_probes_headers() -> None:
    kubelet = [("host", "10.1.2.3:15020"), ("user-agent", "kube-probe/1.30"), ("accept", "*/*"),
               ("connection", "close"), ("x-probe", "from-kubelet")]
    action = HttpGet(8080, "/health", headers=(("X-Probe", "a"), ("X-Probe", "b"), ("Host", "web.local")))
    assert request_headers(kubelet, action, agent_port=15020) == [
        ("user-agent", "kube-probe/1.30"), ("accept", "*/*"),
        ("X-Probe", "a"), ("X-Probe", "b"), ("Host", "web.local"), ("Connection", "close")]
    plain = HttpGet(8080, "/health")
    assert ("Host", "10.1.2.3:8080") in request_headers(kubelet, plain, agent_port=15020)
    assert ("Host", "probe.example") in request_headers([("host", "probe.example")], plain, agent_port=15020)
