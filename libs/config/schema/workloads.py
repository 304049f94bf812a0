"""Schemas of ServiceEntry, WorkloadEntry, WorkloadGroup and Sidecar (networking.istio.io)."""

from __future__ import annotations

from libs.config.schema._types import INT32, STRING, UINT32, Enum, ListOf, MapOf, Message
from libs.config.schema.networking import DESTINATION, LABELS, SERVER_TLS_SETTINGS, STRINGS, WORKLOAD_SELECTOR
from libs.config.schema.traffic import CONNECTION_POOL

# --- ServiceEntry, WorkloadEntry, WorkloadGroup ----------------------------------------------

WORKLOAD_ENTRY = Message("WorkloadEntry", {
    "address": STRING,
    "ports": MapOf(UINT32),
    "labels": LABELS,
    "network": STRING,
    "locality": STRING,
    "weight": UINT32,
    "serviceAccount": STRING,
})
SERVICE_PORT = Message("ServicePort", {"number": UINT32, "protocol": STRING, "name": STRING, "targetPort": UINT32})
SERVICE_ENTRY = Message("ServiceEntry", {
    "hosts": STRINGS,
    "addresses": STRINGS,
    "ports": ListOf(SERVICE_PORT),
    "location": Enum("Location", ("MESH_EXTERNAL", "MESH_INTERNAL")),
    "resolution": Enum("Resolution", ("NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS")),
    "endpoints": ListOf(WORKLOAD_ENTRY),
    "workloadSelector": WORKLOAD_SELECTOR,
    "exportTo": STRINGS,
    "subjectAltNames": STRINGS,
})
HTTP_HEADER = Message("HTTPHeader", {"name": STRING, "value": STRING})
READINESS_PROBE = Message("ReadinessProbe", {
    "initialDelaySeconds": INT32,
    "timeoutSeconds": INT32,
    "periodSeconds": INT32,
    "successThreshold": INT32,
    "failureThreshold": INT32,
    "httpGet": Message("HTTPHealthCheckConfig", {
        "path": STRING, "port": UINT32, "host": STRING, "scheme": STRING, "httpHeaders": ListOf(HTTP_HEADER),
    }),
    "tcpSocket": Message("TCPHealthCheckConfig", {"host": STRING, "port": UINT32}),
    "exec": Message("ExecHealthCheckConfig", {"command": STRINGS}),
    "grpc": Message("GrpcHealthCheckConfig", {"port": UINT32, "service": STRING}),
}, oneofs=(("httpGet", "tcpSocket", "exec", "grpc"),))
WORKLOAD_GROUP = Message("WorkloadGroup", {
    "metadata": Message("WorkloadGroupObjectMeta", {"labels": LABELS, "annotations": LABELS}),
    "template": WORKLOAD_ENTRY,
    "probe": READINESS_PROBE,
})

# --- Sidecar -------------------------------------------------------------------------------------

CAPTURE_MODE = Enum("CaptureMode", ("DEFAULT", "IPTABLES", "NONE"))
SIDECAR_PORT = Message("SidecarPort", {"number": UINT32, "protocol": STRING, "name": STRING, "targetPort": UINT32})
SIDECAR = Message("Sidecar", {
    "workloadSelector": WORKLOAD_SELECTOR,
    "ingress": ListOf(Message("IstioIngressListener", {
        "port": SIDECAR_PORT,
        "bind": STRING,
        "captureMode": CAPTURE_MODE,
        "defaultEndpoint": STRING,
        "tls": SERVER_TLS_SETTINGS,
        "connectionPool": CONNECTION_POOL,
    })),
    "egress": ListOf(Message("IstioEgressListener", {
        "port": SIDECAR_PORT, "bind": STRING, "captureMode": CAPTURE_MODE, "hosts": STRINGS,
    })),
    "outboundTrafficPolicy": Message("OutboundTrafficPolicy", {
        "mode": Enum("OutboundTrafficPolicyMode", ("REGISTRY_ONLY", "ALLOW_ANY")),
        "egressProxy": DESTINATION,
    }),
    "inboundConnectionPool": CONNECTION_POOL,
})
