"""The Envoy bootstrap, Istio style: node identity, ADS to pilot, admin, stats, health."""

from __future__ import annotations

import ipaddress

from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2, config_source_pb2, grpc_service_pb2, protocol_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from envoy.type.matcher.v3 import string_pb2
from google.protobuf import duration_pb2, json_format, struct_pb2

from libs.envoy import HCM_FILTER, HTTP_OPTIONS, ROUTER_FILTER, TLS_SOCKET, pack
from libs.runtime import version
from services.agent.bootstrap_override import load_override
from services.agent.settings import AgentSettings

XDS_CLUSTER = "xds-grpc"
ADMIN_CLUSTER = "admin"
SDS_CLUSTER = "sds-grpc"


def _address(host: str, port: int) -> address_pb2.Address:
    return address_pb2.Address(socket_address=address_pb2.SocketAddress(address=host, port_value=port))


def _reconnect_backoff(settings: AgentSettings) -> base_pb2.RetryPolicy:
    """How Envoy reconnects to pilot: jittered exponential backoff, capped low.  Envoy's
    default cap (30 s) would leave a proxy on old config for up to that long after pilot
    came back; a thousand proxies coming back within a second is what pilot's push
    throttle is for."""
    policy = base_pb2.RetryPolicy()
    policy.retry_back_off.base_interval.FromNanoseconds(int(settings.xds_retry_base_s * 1e9))
    policy.retry_back_off.max_interval.FromNanoseconds(int(settings.xds_retry_max_s * 1e9))
    return policy


def _static_cluster(name: str, host: str, port: int, *, http2: bool = False) -> cluster_pb2.Cluster:
    discovery = cluster_pb2.Cluster.STATIC if _is_ip(host) else cluster_pb2.Cluster.STRICT_DNS
    return _cluster(name, _address(host, port), discovery, http2=http2)


def _cluster(name: str, address: address_pb2.Address, discovery: cluster_pb2.Cluster.DiscoveryType.ValueType,
             *, http2: bool = False) -> cluster_pb2.Cluster:
    cluster = cluster_pb2.Cluster(
        name=name,
        type=discovery,
        connect_timeout=duration_pb2.Duration(seconds=1),
        load_assignment=endpoint_pb2.ClusterLoadAssignment(
            cluster_name=name,
            endpoints=[endpoint_components_pb2.LocalityLbEndpoints(lb_endpoints=[
                endpoint_components_pb2.LbEndpoint(endpoint=endpoint_components_pb2.Endpoint(address=address))
            ])],
        ),
    )
    if http2:
        options = http_protocol_options_pb2.HttpProtocolOptions(
            explicit_http_config=http_protocol_options_pb2.HttpProtocolOptions.ExplicitHttpConfig(
                http2_protocol_options=protocol_pb2.Http2ProtocolOptions()))
        cluster.typed_extension_protocol_options[HTTP_OPTIONS].CopyFrom(pack(options))
    return cluster


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _admin_listener(name: str, host: str, port: int, path: str, rewrite: str) -> listener_pb2.Listener:
    """A static listener forwarding one path to the admin interface (stats, readiness)."""
    route = route_components_pb2.Route(
        match=route_components_pb2.RouteMatch(path=path),
        route=route_components_pb2.RouteAction(cluster=ADMIN_CLUSTER, prefix_rewrite=rewrite),
    )
    manager = hcm.HttpConnectionManager(
        stat_prefix=name,
        route_config=route_pb2.RouteConfiguration(virtual_hosts=[
            route_components_pb2.VirtualHost(name=name, domains=["*"], routes=[route])]),
    )
    manager.http_filters.add(name=ROUTER_FILTER).typed_config.CopyFrom(pack(router_pb2.Router()))
    listener = listener_pb2.Listener(name=name, address=_address(host, port))
    listener.filter_chains.add().filters.add(name=HCM_FILTER).typed_config.CopyFrom(pack(manager))
    return listener


def node_metadata(settings: AgentSettings) -> struct_pb2.Struct:
    metadata = struct_pb2.Struct()
    metadata.update({
        "NAMESPACE": settings.namespace,
        "LABELS": settings.label_map,
        "INSTANCE_IPS": settings.instance_ip,
        "SERVICE_ACCOUNT": settings.service_account,
        "WORKLOAD_NAME": settings.pod_name,
        "INTERCEPTION_MODE": settings.interception_mode,
        "MESH_ID": settings.domain_suffix,
        "CLUSTER_ID": "Kubernetes",
        # Not Istio's: which Mizzen built this proxy, and where its Envoy's admin answers,
        # so pilot's /debug/syncz can tell `mizzenctl version` and `proxy-config secret`.
        "MIZZEN_VERSION": version(),
        "MIZZEN_ADMIN_ADDRESS": f"{settings.admin_address}:{settings.admin_port}",
    })
    if settings.bind_address:
        metadata.update({"MIZZEN_BIND_ADDRESS": settings.bind_address})
    if settings.annotations:
        metadata.update({"ANNOTATIONS": settings.annotation_map})
    if settings.app_ports:
        metadata.update({"APP_PORTS": ",".join(settings.app_ports)})
    if settings.identity_enabled:
        # Tells pilot this proxy holds a workload certificate (SDS `default`), so it may
        # be given mTLS listeners and clusters.
        metadata.update({"MIZZEN_IDENTITY": "true", "TRUST_DOMAIN": settings.trust_domain})
    return metadata


def _sds(name: str) -> secret_pb2.SdsSecretConfig:
    """A secret of the agent's own SDS server, waited for without limit (as Istio's)."""
    return secret_pb2.SdsSecretConfig(name=name, sds_config=config_source_pb2.ConfigSource(
        resource_api_version=config_source_pb2.V3, initial_fetch_timeout=duration_pb2.Duration(seconds=0),
        api_config_source=config_source_pb2.ApiConfigSource(
            api_type=config_source_pb2.ApiConfigSource.GRPC, transport_api_version=config_source_pb2.V3,
            set_node_on_first_message_only=True,
            grpc_services=[grpc_service_pb2.GrpcService(
                envoy_grpc=grpc_service_pb2.GrpcService.EnvoyGrpc(cluster_name=SDS_CLUSTER))])))


def _pilot_tls(server_name: str) -> base_pb2.TransportSocket:
    """Secure xDS: pilot must show a certificate for `server_name` chained to the mesh's
    roots (SDS ROOTCA), so whoever answers on the port cannot feed this proxy config; the
    proxy shows its workload certificate in turn (SDS default)."""
    context = tls_pb2.UpstreamTlsContext(sni=server_name)
    common = context.common_tls_context
    common.tls_certificate_sds_secret_configs.append(_sds("default"))
    common.combined_validation_context.validation_context_sds_secret_config.CopyFrom(_sds("ROOTCA"))
    common.combined_validation_context.default_validation_context.match_typed_subject_alt_names.append(
        common_pb2.SubjectAltNameMatcher(san_type=common_pb2.SubjectAltNameMatcher.DNS,
                                         matcher=string_pb2.StringMatcher(exact=server_name)))
    return base_pb2.TransportSocket(name=TLS_SOCKET, typed_config=pack(context))


def build_bootstrap(settings: AgentSettings) -> bootstrap_pb2.Bootstrap:
    pilot_host, _, pilot_port = settings.pilot_address.rpartition(":")
    ads_source = config_source_pb2.ConfigSource(
        ads=config_source_pb2.AggregatedConfigSource(),
        resource_api_version=config_source_pb2.V3,
        # Istio: wait for real config rather than start empty after 15 s.
        initial_fetch_timeout=duration_pb2.Duration(seconds=0),
    )
    api_type = (config_source_pb2.ApiConfigSource.DELTA_GRPC if settings.xds_api == "DELTA_GRPC"
                else config_source_pb2.ApiConfigSource.GRPC)
    bootstrap = bootstrap_pb2.Bootstrap(
        node={"id": settings.node_id, "cluster": f"{settings.label_map.get('app', settings.pod_name or 'proxy')}."
                                                  f"{settings.namespace}",
              "metadata": node_metadata(settings)},
        dynamic_resources=bootstrap_pb2.Bootstrap.DynamicResources(
            ads_config=config_source_pb2.ApiConfigSource(
                api_type=api_type,
                transport_api_version=config_source_pb2.V3,
                set_node_on_first_message_only=True,
                grpc_services=[grpc_service_pb2.GrpcService(
                    envoy_grpc=grpc_service_pb2.GrpcService.EnvoyGrpc(
                        cluster_name=XDS_CLUSTER, retry_policy=_reconnect_backoff(settings)))],
            ),
            cds_config=ads_source,
            lds_config=ads_source,
        ),
        admin=bootstrap_pb2.Admin(address=_address(settings.admin_address, settings.admin_port)),
    )
    xds = _static_cluster(XDS_CLUSTER, pilot_host, int(pilot_port), http2=True)
    if settings.pilot_tls:
        xds.transport_socket.CopyFrom(_pilot_tls(settings.pilot_server_name))
    bootstrap.static_resources.clusters.extend([
        xds,
        _static_cluster(ADMIN_CLUSTER, settings.admin_address, settings.admin_port),
    ])
    if settings.sds_enabled:
        # Istio's sds-grpc: the agent's SDS server on a Unix socket, HTTP/2.
        pipe = address_pb2.Address(pipe=address_pb2.Pipe(path=str(settings.sds_socket_path.absolute())))
        bootstrap.static_resources.clusters.append(_cluster(SDS_CLUSTER, pipe, cluster_pb2.Cluster.STATIC,
                                                            http2=True))
    listen_host = settings.bind_address or "0.0.0.0"
    if settings.stats_port:
        bootstrap.static_resources.listeners.append(
            _admin_listener("prometheus_stats", listen_host, settings.stats_port, "/stats/prometheus",
                            "/stats/prometheus"))
    if settings.health_port:
        bootstrap.static_resources.listeners.append(
            _admin_listener("health", listen_host, settings.health_port, "/healthz/ready", "/ready"))
    if settings.bootstrap_override is not None:
        bootstrap.MergeFrom(load_override(settings.bootstrap_override))
    return bootstrap


def bootstrap_json(settings: AgentSettings) -> str:
    return json_format.MessageToJson(build_bootstrap(settings), indent=1)
