"""The sidecar's shape: Istio's injected pod, with Mizzen's agent and capture inside.

`istio-init` (root, NET_ADMIN and NET_RAW) runs `python -m services.agent.capture` with the
pod's traffic annotations as istio-iptables' flags.  `istio-proxy` (uid/gid 1337) runs
`python -m services.agent`: Istio's environment (POD_NAME, INSTANCE_IP, ISTIO_META_*, ...)
for whoever reads it, and the agent's own knobs (MIZZEN_<NAME>, services/agent/settings.py)
set from it.  Its volumes: the SDS socket's directory, a projected service-account token
for citadel (audience istio-ca), citadel's root from the `istio-ca-root-cert` ConfigMap,
and memory for the agent's state (bootstrap, Envoy's log).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from libs.capture import CaptureSettings, format_list
from libs.capture.iptables import PROXY_UID
from libs.config.durations import parse_duration
from libs.inject._config import Values
from libs.inject._workload import Workload

INIT_CONTAINER = "istio-init"
PROXY_CONTAINER = "istio-proxy"
TOKEN_AUDIENCE = "istio-ca"
ROOT_CERT_CONFIGMAP = "istio-ca-root-cert"
# (name, volume source, mount path in istio-proxy)
VOLUMES: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("workload-socket", {"emptyDir": {}}, "/var/run/secrets/workload-spiffe-uds"),
    ("istio-envoy", {"emptyDir": {"medium": "Memory"}}, "/etc/istio/proxy"),
    ("istio-token", {"projected": {"sources": [{"serviceAccountToken": {
        "audience": TOKEN_AUDIENCE, "expirationSeconds": 43200, "path": "istio-token"}}]}}, "/var/run/secrets/tokens"),
    ("istiod-ca-cert", {"configMap": {"name": ROOT_CERT_CONFIGMAP}}, "/var/run/secrets/istio"),
)
SDS_SOCKET = "/var/run/secrets/workload-spiffe-uds/socket"
# A directory of its own under the emptyDir: the agent makes its state dir 0700, which it
# may do only to a directory it owns.
AGENT_STATE_DIR = "/etc/istio/proxy/agent"
TOKEN_FILE = "/var/run/secrets/tokens/istio-token"
ROOT_CERT_FILE = "/var/run/secrets/istio/root-cert.pem"
PROMETHEUS_PORT = 15090
HEALTH_PORT = 15021


@dataclass(frozen=True)
class Sidecar:
    """Everything the containers are rendered from, worked out and checked beforehand."""

    namespace: str
    workload: Workload
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    proxy_config: Mapping[str, Any]
    capture: CaptureSettings
    resources: Mapping[str, Mapping[str, str]]
    status_port: int
    discovery_address: str
    concurrency: int | None
    proxy_image: str
    init_image: str
    trust_domain: str
    probers: Mapping[str, Any]
    app_containers: tuple[str, ...]
    app_ports: tuple[Mapping[str, Any], ...]


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _field(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def _proxy_metadata(sidecar: Sidecar) -> list[dict[str, Any]]:
    return [{"name": str(k), "value": str(v)} for k, v in (sidecar.proxy_config.get("proxyMetadata") or {}).items()]


def _image(container: dict[str, Any], image: str, values: Values) -> dict[str, Any]:
    container["image"] = image
    if values.image_pull_policy:
        container["imagePullPolicy"] = values.image_pull_policy
    return container


def init_container(sidecar: Sidecar, values: Values) -> dict[str, Any]:
    capture = sidecar.capture
    args = ["--proxy-uid", str(PROXY_UID), "--proxy-gid", str(PROXY_UID),
            "--include-outbound-ip-ranges", format_list(capture.include_outbound_ip_ranges),
            "--exclude-outbound-ip-ranges", format_list(capture.exclude_outbound_ip_ranges),
            "--include-inbound-ports", format_list(capture.include_inbound_ports),
            "--exclude-inbound-ports", format_list(capture.exclude_inbound_ports),
            "--exclude-outbound-ports", format_list(capture.exclude_outbound_ports)]
    container: dict[str, Any] = {"name": INIT_CONTAINER, "command": ["python", "-m", "services.agent.capture"],
                                 "args": args}
    _image(container, sidecar.init_image, values)
    if _proxy_metadata(sidecar):
        container["env"] = _proxy_metadata(sidecar)
    container["resources"] = {kind: dict(amounts) for kind, amounts in sidecar.resources.items()}
    container["securityContext"] = {
        "allowPrivilegeEscalation": False, "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
        "privileged": False, "readOnlyRootFilesystem": False, "runAsGroup": 0, "runAsNonRoot": False,
        "runAsUser": 0,
    }
    return container


def _istio_env(sidecar: Sidecar, values: Values) -> list[dict[str, Any]]:
    """Istio's variables, as its injector sets them."""
    env = [_field("POD_NAME", "metadata.name"), _field("POD_NAMESPACE", "metadata.namespace"),
           _field("INSTANCE_IP", "status.podIP"), _field("SERVICE_ACCOUNT", "spec.serviceAccountName"),
           _field("HOST_IP", "status.hostIP"),
           {"name": "CA_ADDR", "value": values.ca_address},
           {"name": "JWT_POLICY", "value": "third-party-jwt"},
           {"name": "PROXY_CONFIG", "value": _json(sidecar.proxy_config)},
           {"name": "ISTIO_META_POD_PORTS", "value": _json(list(sidecar.app_ports))},
           {"name": "ISTIO_META_APP_CONTAINERS", "value": ",".join(sidecar.app_containers)},
           {"name": "ISTIO_META_CLUSTER_ID", "value": values.cluster_id},
           {"name": "ISTIO_META_INTERCEPTION_MODE", "value": "REDIRECT"},
           {"name": "ISTIO_META_WORKLOAD_NAME", "value": sidecar.workload.name},
           {"name": "ISTIO_META_OWNER", "value": sidecar.workload.owner(sidecar.namespace)},
           {"name": "ISTIO_META_MESH_ID", "value": sidecar.trust_domain},
           {"name": "TRUST_DOMAIN", "value": sidecar.trust_domain}]
    if sidecar.probers:
        env.append({"name": "ISTIO_KUBE_APP_PROBERS", "value": _json(sidecar.probers)})
    return env


def _agent_env(sidecar: Sidecar, values: Values) -> list[dict[str, Any]]:
    """The agent's knobs.  Kubernetes expands $(VAR) from the variables defined above."""
    settings: dict[str, str] = {
        "MIZZEN_POD_NAME": "$(POD_NAME)",
        "MIZZEN_NAMESPACE": "$(POD_NAMESPACE)",
        "MIZZEN_INSTANCE_IP": "$(INSTANCE_IP)",
        "MIZZEN_SERVICE_ACCOUNT": "$(SERVICE_ACCOUNT)",
        # Labels as rendered (Istio's ISTIO_METAJSON_LABELS): what pilot selects config by.
        "MIZZEN_LABELS": ",".join(f"{k}={v}" for k, v in sorted(sidecar.labels.items())),
        "MIZZEN_DOMAIN_SUFFIX": values.cluster_domain,
        "MIZZEN_TRUST_DOMAIN": sidecar.trust_domain,
        "MIZZEN_PILOT_ADDRESS": sidecar.discovery_address,
        "MIZZEN_STATE_DIR": AGENT_STATE_DIR,
        # The kubelet probes the agent at the pod IP: /app-health/* and /healthz on all addresses.
        "MIZZEN_MONITORING_ADDRESS": "0.0.0.0",
        "MIZZEN_MONITORING_PORT": str(sidecar.status_port),
        "MIZZEN_IDENTITY_ENABLED": "true",
        "MIZZEN_CITADEL_ADDRESS": values.ca_address,
        "MIZZEN_CITADEL_ROOT_CERT": ROOT_CERT_FILE,
        "MIZZEN_CITADEL_TOKEN_FILE": TOKEN_FILE,
        "MIZZEN_SDS_SOCKET": SDS_SOCKET,
        "MIZZEN_LOG_JSON": "true",
    }
    # Pilot reads these from the proxy (policy.istio.io/check); the agent's list is k=v,k=v.
    policy = {k: v for k, v in sidecar.annotations.items() if k.startswith("policy.istio.io/") and "," not in v}
    if policy:
        settings["MIZZEN_ANNOTATIONS"] = ",".join(f"{k}={v}" for k, v in sorted(policy.items()))
    if sidecar.concurrency is not None:
        settings["MIZZEN_ENVOY_CONCURRENCY"] = str(sidecar.concurrency)
    if sidecar.proxy_config.get("drainDuration"):
        settings["MIZZEN_DRAIN_DURATION_S"] = str(float(parse_duration(sidecar.proxy_config["drainDuration"])))
    return [{"name": name, "value": value} for name, value in settings.items()]


def proxy_container(sidecar: Sidecar, values: Values) -> dict[str, Any]:
    env = _istio_env(sidecar, values) + _agent_env(sidecar, values)
    # proxyMetadata is how a user sets any variable of the proxy, ours included: it wins.
    overrides = _proxy_metadata(sidecar)
    overridden = {item["name"] for item in overrides}
    env = [item for item in env if item["name"] not in overridden] + overrides
    container: dict[str, Any] = {"name": PROXY_CONTAINER, "command": ["python", "-m", "services.agent"]}
    _image(container, sidecar.proxy_image, values)
    container.update({
        "env": env,
        "ports": [{"containerPort": PROMETHEUS_PORT, "name": "http-envoy-prom", "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": HEALTH_PORT},
                           "initialDelaySeconds": values.readiness_initial_delay_s,
                           "periodSeconds": values.readiness_period_s,
                           "failureThreshold": values.readiness_failure_threshold, "timeoutSeconds": 3},
        "resources": {kind: dict(amounts) for kind, amounts in sidecar.resources.items()},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                            "privileged": False, "readOnlyRootFilesystem": True, "runAsGroup": PROXY_UID,
                            "runAsNonRoot": True, "runAsUser": PROXY_UID},
        "volumeMounts": [{"mountPath": path, "name": name} for name, _, path in VOLUMES],
    })
    return container


def volumes() -> list[dict[str, Any]]:
    return [{"name": name, **copy.deepcopy(source)} for name, source, _ in VOLUMES]


def status(values: Values) -> str:
    """`sidecar.istio.io/status`: what was added, so a tool can tell (and undo) it."""
    return json.dumps({
        "initContainers": [INIT_CONTAINER],
        "containers": [PROXY_CONTAINER],
        "volumes": [name for name, _, _ in VOLUMES],
        "imagePullSecrets": list(values.image_pull_secrets) or None,
        "revision": values.revision_name,
    }, separators=(",", ":"))
