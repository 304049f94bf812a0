"""The kinds Mizzen serves, the API versions Istio serves them in, and their schemas.

Every other kind (EnvoyFilter, WasmPlugin, ProxyConfig, Kubernetes kinds, ...)
is reported as an unsupported kind by `parse_resource`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from libs.config.schema import Message, mesh, traffic, workloads
from libs.config.schema import mixer as mix
from libs.config.schema import networking as net
from libs.config.schema import security as sec
from libs.config.schema import telemetry as tel
from libs.config.validation import (
    Checker,
    authorization_policy,
    destination_rule,
    gateway,
    mesh_config,
    mixer,
    peer_authentication,
    ratelimit_config,
    request_authentication,
    service_entry,
    sidecar,
    telemetry,
    virtual_service,
    workload,
)

NETWORKING = "networking.istio.io"
SECURITY = "security.istio.io"
TELEMETRY = "telemetry.istio.io"
# Mixer's policy kinds (Istio 1.0/1.1), served by Mizzen's policy service.
MIXER = "config.istio.io"
# The mesh config: users write the `istio` ConfigMap (core group, v1); Mizzen holds its
# `mesh` key, validated, as the internal kind MeshConfig (see `libs.config._mesh`).
MESH_CONFIG_KIND = "MeshConfig"
# envoyproxy/ratelimit's configuration, from the ConfigMap `ratelimit-config` (see the same).
RATELIMIT_CONFIG_KIND = "RateLimitConfig"
# Istio serves every networking kind it registers in all three versions (the CRDs share one
# schema), the security kinds in v1beta1 and v1, and Telemetry in v1alpha1 and v1.
NETWORKING_VERSIONS = ("v1alpha3", "v1beta1", "v1")
SECURITY_VERSIONS = ("v1beta1", "v1")
TELEMETRY_VERSIONS = ("v1alpha1", "v1")
MIXER_VERSIONS = ("v1alpha2",)
# Kept for callers written before the security kinds existed.
ISTIO_VERSIONS = NETWORKING_VERSIONS

Validator = Callable[[dict[str, Any], Checker], None]


@dataclass(frozen=True)
class KindInfo:
    group: str
    kind: str
    plural: str
    versions: tuple[str, ...]
    schema: Message
    validate: Validator
    # kubectl's short names (`kubectl get vs`), which mizzenctl accepts too.
    short_names: tuple[str, ...] = ()
    # Where the spec sits in what users write, for error paths.
    spec_path: str = "spec"

    @property
    def api_versions(self) -> tuple[str, ...]:
        return tuple(f"{self.group}/{version}" if self.group else version for version in self.versions)


_KINDS: dict[str, KindInfo] = {}


def register(info: KindInfo) -> None:
    _KINDS[info.kind] = info


for _info in (
    KindInfo(NETWORKING, "VirtualService", "virtualservices", NETWORKING_VERSIONS, net.VIRTUAL_SERVICE,
             virtual_service.validate, ("vs",)),
    KindInfo(NETWORKING, "DestinationRule", "destinationrules", NETWORKING_VERSIONS, traffic.DESTINATION_RULE,
             destination_rule.validate, ("dr",)),
    KindInfo(NETWORKING, "Gateway", "gateways", NETWORKING_VERSIONS, net.GATEWAY, gateway.validate, ("gw",)),
    KindInfo(NETWORKING, "ServiceEntry", "serviceentries", NETWORKING_VERSIONS, workloads.SERVICE_ENTRY,
             service_entry.validate, ("se",)),
    KindInfo(NETWORKING, "Sidecar", "sidecars", NETWORKING_VERSIONS, workloads.SIDECAR, sidecar.validate),
    KindInfo(NETWORKING, "WorkloadEntry", "workloadentries", NETWORKING_VERSIONS, workloads.WORKLOAD_ENTRY,
             workload.validate_workload_entry, ("we",)),
    KindInfo(NETWORKING, "WorkloadGroup", "workloadgroups", NETWORKING_VERSIONS, workloads.WORKLOAD_GROUP,
             workload.validate_workload_group, ("wg",)),
    KindInfo(SECURITY, "AuthorizationPolicy", "authorizationpolicies", SECURITY_VERSIONS,
             sec.AUTHORIZATION_POLICY, authorization_policy.validate, ("ap",)),
    KindInfo(SECURITY, "PeerAuthentication", "peerauthentications", SECURITY_VERSIONS, sec.PEER_AUTHENTICATION,
             peer_authentication.validate, ("pa",)),
    KindInfo(SECURITY, "RequestAuthentication", "requestauthentications", SECURITY_VERSIONS,
             sec.REQUEST_AUTHENTICATION, request_authentication.validate, ("ra",)),
    KindInfo(TELEMETRY, "Telemetry", "telemetries", TELEMETRY_VERSIONS, tel.TELEMETRY, telemetry.validate,
             ("telemetry",)),
    KindInfo("", MESH_CONFIG_KIND, "configmaps", ("v1",), mesh.MESH_CONFIG, mesh_config.validate,
             ("meshconfig",), spec_path=mesh_config.ROOT),
    KindInfo("", RATELIMIT_CONFIG_KIND, "configmaps", ("v1",), mesh.RATELIMIT_CONFIG, ratelimit_config.validate,
             ("ratelimitconfig",), spec_path="data"),
    # Mixer's kinds, named and pluralised as Istio 1.1's CRDs name them (lower-case, no short
    # names): the rule, 1.1's generic handler and instance, 1.0's per-adapter and per-template
    # kinds whose spec is the params, and the quota specs the proxies charge.
    KindInfo(MIXER, "rule", "rules", MIXER_VERSIONS, mix.RULE, mixer.validate_rule),
    KindInfo(MIXER, "handler", "handlers", MIXER_VERSIONS, mix.HANDLER, mixer.validate_handler),
    KindInfo(MIXER, "instance", "instances", MIXER_VERSIONS, mix.INSTANCE, mixer.validate_instance),
    *(KindInfo(MIXER, kind, f"{kind}s", MIXER_VERSIONS, schema, mixer.ADAPTER_KIND_VALIDATORS[kind])
      for kind, schema in mix.ADAPTER_PARAMS.items()),
    KindInfo(MIXER, "checknothing", "checknothings", MIXER_VERSIONS, mix.CHECKNOTHING,
             mixer.TEMPLATE_KIND_VALIDATORS["checknothing"]),
    KindInfo(MIXER, "listentry", "listentries", MIXER_VERSIONS, mix.LISTENTRY,
             mixer.TEMPLATE_KIND_VALIDATORS["listentry"]),
    KindInfo(MIXER, "quota", "quotas", MIXER_VERSIONS, mix.QUOTA, mixer.TEMPLATE_KIND_VALIDATORS["quota"]),
    KindInfo(MIXER, "QuotaSpec", "quotaspecs", MIXER_VERSIONS, mix.QUOTA_SPEC, mixer.validate_quota_spec),
    KindInfo(MIXER, "QuotaSpecBinding", "quotaspecbindings", MIXER_VERSIONS, mix.QUOTA_SPEC_BINDING,
             mixer.validate_quota_spec_binding),
):
    register(_info)


def lookup(api_version: str, kind: str) -> KindInfo | None:
    """The kind's info if Mizzen serves `kind` at `api_version`."""
    info = _KINDS.get(kind)
    if info is None or api_version not in info.api_versions:
        return None
    return info


def supported_kinds() -> list[KindInfo]:
    return list(_KINDS.values())


def kind_by_name(name: str) -> KindInfo | None:
    """Find a kind by its name, plural, singular lower-case form or short name (for `mizzenctl get`)."""
    lowered = name.lower()
    for info in _KINDS.values():
        if lowered in (info.kind.lower(), info.plural, *info.short_names):
            return info
    return None
