"""The mesh config, as users write it (the `istio` ConfigMap's `mesh` key): accepted,
refused with the field under `data.mesh` named, and other ConfigMaps left alone."""

from __future__ import annotations

import textwrap

import pytest

from libs.config import parse_text


def configmap(mesh: str, *, name: str = "istio", namespace: str = "istio-system") -> str:
    body = textwrap.indent(textwrap.dedent(mesh), "    ")
    return (f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: {namespace}}}\n"
            f"data:\n  mesh: |\n{body}")


ISTIO_DEFAULTS = """\
rootNamespace: istio-system
trustDomain: cluster.local
accessLogFile: /dev/stdout
accessLogEncoding: JSON
enableTracing: true
defaultConfig:
  discoveryAddress: istiod.istio-system.svc:15012
  tracing: {sampling: 1.0, zipkin: {address: zipkin.istio-system:9411}}
  gatewayTopology: {numTrustedProxies: 2}
  proxyMetadata: {ISTIO_META_DNS_CAPTURE: "true"}
outboundTrafficPolicy: {mode: REGISTRY_ONLY}
enablePrometheusMerge: true
extensionProviders:
- name: opa
  envoyExtAuthzGrpc: {service: opa.opa.svc.cluster.local, port: 9191, timeout: 0.5s, failOpen: true}
- name: sample-ext-authz-http
  envoyExtAuthzHttp:
    service: ext-authz.foo.svc.cluster.local
    port: 8000
    includeRequestHeadersInCheck: [x-ext-authz]
    headersToUpstreamOnAllow: [x-ext-authz-check-result]
- name: zipkin
  zipkin: {service: zipkin.istio-system.svc.cluster.local, port: 9411}
defaultProviders: {tracing: [zipkin]}
"""


def test_istio_style_mesh_config_is_accepted_as_the_mesh_config_kind() -> None:
    result = parse_text(configmap(ISTIO_DEFAULTS), "mesh.yaml")
    assert result.errors() == []
    (_, resource), = result.resources
    assert (resource.kind, resource.namespace, resource.name) == ("MeshConfig", "istio-system", "istio")
    assert resource.key == "MeshConfig.istio-system.istio"
    assert resource.spec["extensionProviders"][0]["envoyExtAuthzGrpc"]["timeout"] == "0.5s"
    assert resource.spec["defaultConfig"]["gatewayTopology"]["numTrustedProxies"] == 2
    # What galley publishes reads back as the same resource.
    assert parse_text(resource.to_json(), "kv").resources[0][1] == resource


def test_other_configmaps_are_not_mizzen_config() -> None:
    result = parse_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-settings}\ndata: {a: b}\n", "x")
    assert result.resources == [] and result.invalid == []
    assert [e.resource for e in result.unsupported] == ["ConfigMap default/app-settings"]


@pytest.mark.parametrize(("mesh", "path", "reason"), [
    ("rootNamespace: Istio_System\n", "data.mesh.rootNamespace", "is not a namespace name"),
    ("outboundTrafficPolicy: {mode: SOMETIMES}\n", "data.mesh.outboundTrafficPolicy.mode", "is not one of"),
    ("accessLogFile: 3\n", "data.mesh.accessLogFile", "must be a string"),
    ("enableTracng: true\n", "data.mesh.enableTracng", "unknown field in MeshConfig"),
    ("connectTimeout: 0s\n", "data.mesh.connectTimeout", "at least 1ms"),
    ("defaultConfig: {tracing: {sampling: 120}}\n", "data.mesh.defaultConfig.tracing.sampling", "0-100"),
    ("extensionProviders: [{name: a, envoyExtAuthzGrpc: {port: 9000}}]\n",
     "data.mesh.extensionProviders[0].envoyExtAuthzGrpc.service", "service is required"),
    ("extensionProviders: [{name: a, envoyExtAuthzGrpc: {service: a.b.svc, port: 70000}}]\n",
     "data.mesh.extensionProviders[0].envoyExtAuthzGrpc.port", "must be in the range 1-65535"),
    ("extensionProviders: [{name: a, envoyExtAuthzHttp: {service: a.b, port: 80, statusOnError: nope}}]\n",
     "data.mesh.extensionProviders[0].envoyExtAuthzHttp.statusOnError", "not an HTTP status code"),
    ("extensionProviders: [{name: a, prometheus: {}}, {name: a, prometheus: {}}]\n",
     "data.mesh.extensionProviders[1].name", "duplicate extension provider name"),
    ("extensionProviders: [{name: a, prometheus: {}, zipkin: {service: z.a, port: 1}}]\n",
     "data.mesh.extensionProviders[0]", "only one of"),
    ("defaultProviders: {metrics: [prom]}\n", "data.mesh.defaultProviders.metrics[0]", "is not defined"),
    ("discoverySelectors: [{matchLabels: {a: b}}, {matchExpressions: [{key: env, operator: Maybe}]}]\n",
     "data.mesh.discoverySelectors[1].matchExpressions[0].operator", "is not one of In, NotIn"),
    ("discoverySelectors: [{matchLabel: {a: b}}]\n", "data.mesh.discoverySelectors[0]", "unknown field"),
])
def test_bad_mesh_config_names_the_field(mesh: str, path: str, reason: str) -> None:
    result = parse_text(configmap(mesh), "mesh.yaml")
    assert result.resources == []
    lines = result.errors()
    assert any(f"MeshConfig istio-system/istio: {path}: " in line and reason in line for line in lines), lines


def test_mesh_that_is_not_yaml_is_refused_at_data_mesh() -> None:
    result = parse_text(configmap("a: [unclosed\n"), "mesh.yaml")
    assert any("data.mesh: invalid YAML" in line for line in result.errors()), result.errors()
