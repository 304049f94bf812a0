"""Gateway, ServiceEntry, Sidecar, WorkloadEntry and WorkloadGroup configs Istio rejects."""

from __future__ import annotations

import pytest

from tests.unit.config.cases import Case, assert_rejected

GW, SE, SC, WE, WG = "Gateway", "ServiceEntry", "Sidecar", "WorkloadEntry", "WorkloadGroup"


def server(body: str = "", port: str = "{number: 80, name: http, protocol: HTTP}", hosts: str = "[a.com]") -> str:
    extra = f", {body}" if body else ""
    return f"{{servers: [{{port: {port}, hosts: {hosts}{extra}}}]}}"


def https(tls: str) -> str:
    return server(f"tls: {tls}", "{number: 443, name: https, protocol: HTTPS}")


def entry(body: str) -> str:
    return "{hosts: [a.example.com], ports: [{number: 80, name: http, protocol: HTTP}], " + body + "}"


CASES = [
    # --- Gateway
    Case("gw-no-servers", GW, "{selector: {istio: ingressgateway}}", "spec.servers", "at least one server"),
    Case("gw-dotted-name", GW, server(), "metadata.name", "no dots", name="my.gateway"),
    Case("gw-no-hosts", GW, server(hosts="[]"), "spec.servers[0].hosts", "at least one host"),
    Case("gw-short-host", GW, server(hosts="[reviews]"), "spec.servers[0].hosts[0]", "short names"),
    Case("gw-partial-wildcard", GW, server(hosts="['*foo.com']"), "spec.servers[0].hosts[0]", "partial wildcard"),
    Case("gw-tilde-namespace", GW, server(hosts="['~/a.com']"), "spec.servers[0].hosts[0]", "invalid namespace"),
    Case("gw-bad-namespace", GW, server(hosts="['bad_ns/a.com']"), "spec.servers[0].hosts[0]", "invalid namespace"),
    Case("gw-empty-dns-name", GW, server(hosts="['ns/']"), "spec.servers[0].hosts[0]", "cannot be empty"),
    Case("gw-no-protocol", GW, server(port="{number: 80, name: http}"), "spec.servers[0].port.protocol",
         "a protocol is required"),
    Case("gw-bad-protocol", GW, server(port="{number: 80, name: http, protocol: QUIC}"),
         "spec.servers[0].port.protocol", "unsupported protocol 'QUIC'"),
    Case("gw-port-zero", GW, server(port="{number: 0, name: http, protocol: HTTP}"), "spec.servers[0].port.number",
         "1-65535"),
    Case("gw-port-no-name", GW, server(port="{number: 80, protocol: HTTP}"), "spec.servers[0].port.name",
         "port name is required"),
    Case("gw-target-port", GW, server(port="{number: 80, name: http, protocol: HTTP, targetPort: 8080}"),
         "spec.servers[0].port.targetPort", "no effect on Gateways"),
    Case("gw-duplicate-port-name", GW,
         "{servers: [{port: {number: 80, name: web, protocol: HTTP}, hosts: [a.com]}, "
         "{port: {number: 8080, name: web, protocol: HTTP}, hosts: [b.com]}]}",
         "spec.servers[1].port.name", "must be unique across servers"),
    Case("gw-duplicate-server-name", GW,
         "{servers: [{name: s, port: {number: 80, name: a, protocol: HTTP}, hosts: [a.com]}, "
         "{name: s, port: {number: 81, name: b, protocol: HTTP}, hosts: [b.com]}]}",
         "spec.servers[1].name", "is also used by spec.servers[0]"),
    Case("gw-https-without-tls", GW, server(port="{number: 443, name: https, protocol: HTTPS}"),
         "spec.servers[0].tls", "needs tls settings"),
    Case("gw-tcp-with-tls", GW, server("tls: {mode: SIMPLE, credentialName: c}",
                                       "{number: 9000, name: tcp, protocol: TCP}"),
         "spec.servers[0].tls", "cannot have tls settings"),
    Case("gw-http-with-simple-tls", GW, server("tls: {mode: SIMPLE, credentialName: c}"),
         "spec.servers[0].tls", "plain-text HTTP server"),
    Case("gw-simple-no-cert", GW, https("{mode: SIMPLE, privateKey: /k.pem}"),
         "spec.servers[0].tls.serverCertificate", "SIMPLE TLS requires serverCertificate"),
    Case("gw-mutual-no-ca", GW, https("{mode: MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem}"),
         "spec.servers[0].tls.caCertificates", "client CA bundle"),
    Case("gw-istio-mutual-cert", GW, https("{mode: ISTIO_MUTUAL, credentialName: c}"),
         "spec.servers[0].tls.credentialName", "ISTIO_MUTUAL TLS cannot name certificates"),
    Case("gw-crl-simple", GW, https("{mode: SIMPLE, serverCertificate: /c, privateKey: /k, caCrl: /crl}"),
         "spec.servers[0].tls.caCrl", "not supported with SIMPLE TLS"),
    Case("gw-two-credential-forms", GW, https("{mode: SIMPLE, credentialName: a, credentialNames: [b]}"),
         "spec.servers[0].tls", "only one of credentialName or credentialNames"),
    Case("gw-tls-certificate-incomplete", GW, https("{mode: SIMPLE, tlsCertificates: [{serverCertificate: /c}]}"),
         "spec.servers[0].tls.tlsCertificates[0].privateKey", "required"),
    Case("gw-tls-mode-enum", GW, https("{mode: STRICT}"), "spec.servers[0].tls.mode", "is not one of PASSTHROUGH"),
    Case("gw-bind-host", GW, server("bind: localhost"), "spec.servers[0].bind", "must be an IP address"),
    Case("gw-bind-unix-relative", GW, server("bind: 'unix://sock'", "{number: 0, name: uds, protocol: HTTP}"),
         "spec.servers[0].bind", "absolute path"),
    Case("gw-bind-unix-port", GW, server("bind: 'unix:///var/run/gw.sock'"), "spec.servers[0].bind",
         "must be 0 for a unix domain socket"),
    # --- ServiceEntry
    Case("se-no-hosts", SE, "{ports: [{number: 80, name: http}]}", "spec.hosts", "at least one host"),
    Case("se-star-host", SE, "{hosts: ['*'], ports: [{number: 80, name: http}]}", "spec.hosts[0]",
         "'*' is not allowed"),
    Case("se-ip-host", SE, "{hosts: [10.0.0.1], ports: [{number: 80, name: http}]}", "spec.hosts[0]",
         "put IP addresses in spec.addresses"),
    Case("se-bad-address", SE, "{hosts: [a.com], addresses: [10.0.0], ports: [{number: 80, name: http}]}",
         "spec.addresses[0]", "not a valid IP address"),
    Case("se-bad-cidr", SE, "{hosts: [a.com], addresses: [10.0.0.0/33], ports: [{number: 80, name: http}]}",
         "spec.addresses[0]", "not a valid CIDR block"),
    Case("se-cidr-with-dns", SE, "{hosts: [a.com], addresses: [10.0.0.0/24], resolution: DNS, ports: "
                                 "[{number: 80, name: http}]}",
         "spec.addresses", "only with resolution NONE or STATIC"),
    Case("se-duplicate-port-name", SE, "{hosts: [a.com], ports: [{number: 80, name: p}, {number: 81, name: p}]}",
         "spec.ports[1].name", "already defined"),
    Case("se-duplicate-port-number", SE, "{hosts: [a.com], ports: [{number: 80, name: a}, {number: 80, name: b}]}",
         "spec.ports[1].number", "port 80 is already defined"),
    Case("se-port-without-name", SE, "{hosts: [a.com], ports: [{number: 80, protocol: HTTP}]}",
         "spec.ports[0].name", "invalid port name"),
    Case("se-port-protocol", SE, "{hosts: [a.com], ports: [{number: 80, name: a, protocol: SMTP}]}",
         "spec.ports[0].protocol", "unsupported protocol"),
    Case("se-port-zero", SE, "{hosts: [a.com], ports: [{number: 0, name: a}]}", "spec.ports[0].number", "1-65535"),
    Case("se-target-port", SE, "{hosts: [a.com], resolution: DNS, ports: [{number: 80, name: a, targetPort: 70000}]}",
         "spec.ports[0].targetPort", "1-65535"),
    Case("se-none-with-endpoints", SE, entry("resolution: NONE, endpoints: [{address: 10.0.0.1}]"),
         "spec.endpoints", "resolution NONE"),
    Case("se-static-hostname", SE, entry("resolution: STATIC, endpoints: [{address: db.internal}]"),
         "spec.endpoints[0].address", "not a valid IP address"),
    Case("se-static-no-address", SE, entry("resolution: STATIC, endpoints: [{labels: {a: b}}]"),
         "spec.endpoints[0].address", "an address is required"),
    Case("se-endpoint-port-unknown", SE, entry("resolution: STATIC, endpoints: [{address: 10.0.0.1, "
                                               "ports: {grpc: 9000}}]"),
         "spec.endpoints[0].ports[grpc]", "not defined by the service entry"),
    Case("se-endpoint-port-zero", SE, entry("resolution: STATIC, endpoints: [{address: 10.0.0.1, ports: {http: 0}}]"),
         "spec.endpoints[0].ports[http]", "1-65535"),
    Case("se-endpoint-labels", SE, entry("resolution: STATIC, endpoints: [{address: 10.0.0.1, labels: {a: 'b c'}}]"),
         "spec.endpoints[0].labels[a]", "invalid label value"),
    Case("se-unix-endpoint-ports", SE, entry("resolution: STATIC, endpoints: [{address: 'unix:///s.sock', "
                                             "ports: {http: 80}}]"),
         "spec.endpoints[0].ports", "must not have ports"),
    Case("se-unix-relative", SE, entry("resolution: STATIC, endpoints: [{address: 'unix://s.sock'}]"),
         "spec.endpoints[0].address", "absolute path"),
    Case("se-dns-wildcard", SE, "{hosts: ['*.a.com'], resolution: DNS, ports: [{number: 80, name: http, "
                                "protocol: HTTP}]}", "spec.hosts[0]", "resolvable DNS names"),
    Case("se-dns-round-robin", SE, entry("resolution: DNS_ROUND_ROBIN, endpoints: [{address: a.com}, "
                                         "{address: b.com}]"),
         "spec.endpoints", "at most one endpoint"),
    Case("se-dns-bad-endpoint", SE, entry("resolution: DNS, endpoints: [{address: a_b.com}]"),
         "spec.endpoints[0].address", "not a valid FQDN or IP address"),
    Case("se-selector-and-endpoints", SE, entry("resolution: STATIC, workloadSelector: {labels: {app: a}}, "
                                                "endpoints: [{address: 10.0.0.1}]"),
         "spec", "only one of workloadSelector or endpoints"),
    Case("se-selector-wildcard", SE, entry("resolution: STATIC, workloadSelector: {labels: {app: '*'}}"),
         "spec.workloadSelector.labels[app]", "wildcard is not supported"),
    Case("se-hosts-share-tcp", SE, "{hosts: [a.com, b.com], resolution: DNS, ports: [{number: 5432, name: pg, "
                                   "protocol: TCP}]}", "spec.ports[0].protocol", "several hosts"),
    Case("se-export-none-and-more", SE, entry("exportTo: ['~', '.']"), "spec.exportTo", "no one (~) and someone"),
    Case("se-resolution-enum", SE, entry("resolution: DHCP"), "spec.resolution", "is not one of NONE"),
    # --- Sidecar
    Case("sc-empty", SC, "{}", "spec", "empty Sidecar"),
    Case("sc-egress-no-namespace", SC, "{egress: [{hosts: [a.com]}]}", "spec.egress[0].hosts[0]",
         "namespace/dnsName"),
    Case("sc-egress-short-name", SC, "{egress: [{hosts: [ns/reviews]}]}", "spec.egress[0].hosts[0]", "short names"),
    Case("sc-egress-partial-wildcard", SC, "{egress: [{hosts: ['ns/*a.com']}]}", "spec.egress[0].hosts[0]",
         "partial wildcard"),
    Case("sc-egress-bad-namespace", SC, "{egress: [{hosts: [Bad_NS/a.com]}]}", "spec.egress[0].hosts[0]",
         "invalid namespace"),
    Case("sc-egress-no-hosts", SC, "{egress: [{port: {number: 80, protocol: HTTP}}]}", "spec.egress[0].hosts",
         "at least one host"),
    Case("sc-two-catch-alls", SC, "{egress: [{hosts: ['./*']}, {hosts: ['istio-system/*']}]}", "spec.egress[0]",
         "only the last egress listener"),
    Case("sc-egress-port-zero-tcp", SC, "{egress: [{port: {number: 0, protocol: HTTP}, hosts: ['./*']}]}",
         "spec.egress[0].bind", "unix:// domain socket"),
    Case("sc-egress-uds-capture", SC, "{egress: [{port: {number: 0, protocol: HTTP}, bind: 'unix:///a.sock', "
                                      "captureMode: IPTABLES, hosts: ['./*']}]}",
         "spec.egress[0].captureMode", "DEFAULT or NONE"),
    Case("sc-egress-duplicate-port", SC, "{egress: [{port: {number: 80, protocol: HTTP}, hosts: ['./*']}, "
                                         "{port: {number: 80, protocol: HTTP}, hosts: ['ns/*']}]}",
         "spec.egress[1].port.number", "used by another egress listener"),
    Case("sc-egress-bind", SC, "{egress: [{port: {number: 80, protocol: HTTP}, bind: localhost, hosts: ['./*']}]}",
         "spec.egress[0].bind", "must be an IP address"),
    Case("sc-egress-target-port", SC, "{egress: [{port: {number: 80, protocol: HTTP, targetPort: 81}, "
                                      "hosts: ['./*']}]}", "spec.egress[0].port.targetPort", "no effect on Sidecars"),
    Case("sc-egress-protocol", SC, "{egress: [{port: {number: 80, protocol: SPDY}, hosts: ['./*']}]}",
         "spec.egress[0].port.protocol", "unsupported protocol"),
    Case("sc-capture-enum", SC, "{egress: [{captureMode: EBPF, hosts: ['./*']}]}", "spec.egress[0].captureMode",
         "is not one of DEFAULT"),
    Case("sc-ingress-no-port", SC, "{ingress: [{defaultEndpoint: '127.0.0.1:8080'}]}", "spec.ingress[0].port",
         "needs a port"),
    Case("sc-ingress-port-zero", SC, "{ingress: [{port: {number: 0, protocol: HTTP, name: http}}]}",
         "spec.ingress[0].port.number", "1-65535"),
    Case("sc-ingress-port-name", SC, "{ingress: [{port: {number: 80, protocol: HTTP, name: 'web server'}}]}",
         "spec.ingress[0].port.name", "invalid port name"),
    Case("sc-default-endpoint-remote", SC, "{ingress: [{port: {number: 80, protocol: HTTP, name: h}, "
                                           "defaultEndpoint: '10.0.0.1:8080'}]}",
         "spec.ingress[0].defaultEndpoint", "127.0.0.1:PORT"),
    Case("sc-default-endpoint-port-word", SC, "{ingress: [{port: {number: 80, protocol: HTTP, name: h}, "
                                              "defaultEndpoint: '127.0.0.1:http'}]}",
         "spec.ingress[0].defaultEndpoint", "is not a number"),
    Case("sc-default-endpoint-port-range", SC, "{ingress: [{port: {number: 80, protocol: HTTP, name: h}, "
                                               "defaultEndpoint: '0.0.0.0:0'}]}",
         "spec.ingress[0].defaultEndpoint", "1-65535"),
    Case("sc-default-endpoint-unix", SC, "{ingress: [{port: {number: 80, protocol: HTTP, name: h}, "
                                         "defaultEndpoint: 'unix://app.sock'}]}",
         "spec.ingress[0].defaultEndpoint", "absolute path"),
    Case("sc-ingress-duplicate-port", SC, "{ingress: [{port: {number: 80, protocol: HTTP, name: a}}, "
                                          "{port: {number: 80, protocol: HTTP, name: b}}]}",
         "spec.ingress[1].port.number", "used by another ingress listener"),
    Case("sc-ingress-tls-mode", SC, "{ingress: [{port: {number: 443, protocol: HTTPS, name: a}, "
                                    "tls: {mode: ISTIO_MUTUAL}}]}", "spec.ingress[0].tls.mode", "cannot be used"),
    Case("sc-ingress-tls-redirect", SC, "{ingress: [{port: {number: 443, protocol: HTTPS, name: a}, "
                                        "tls: {mode: SIMPLE, httpsRedirect: true, serverCertificate: /c, "
                                        "privateKey: /k}}]}", "spec.ingress[0].tls.httpsRedirect", "not supported"),
    Case("sc-egress-proxy-mode", SC, "{outboundTrafficPolicy: {mode: REGISTRY_ONLY, egressProxy: {host: p.com, "
                                     "port: {number: 3128}}}}",
         "spec.outboundTrafficPolicy.egressProxy", "only be set with mode ALLOW_ANY"),
    Case("sc-egress-proxy-port", SC, "{outboundTrafficPolicy: {mode: ALLOW_ANY, egressProxy: {host: p.com}}}",
         "spec.outboundTrafficPolicy.egressProxy.port", "needs a port"),
    Case("sc-selector-empty-key", SC, "{workloadSelector: {labels: {'': a}}, egress: [{hosts: ['./*']}]}",
         "spec.workloadSelector.labels[]", "empty key"),
    Case("sc-inbound-pool-empty", SC, "{inboundConnectionPool: {}}", "spec.inboundConnectionPool",
         "at least one field"),
    # --- WorkloadEntry and WorkloadGroup
    Case("we-no-address", WE, "{labels: {app: a}}", "spec.address", "an address is required"),
    Case("we-bad-address", WE, "{address: 'vm 1'}", "spec.address", "not a valid FQDN or IP address"),
    Case("we-unix-ports", WE, "{address: 'unix:///a.sock', ports: {http: 80}}", "spec.ports", "must not have ports"),
    Case("we-port-name", WE, "{address: 10.0.0.1, ports: {Bad_Name: 80}}", "spec.ports[Bad_Name]",
         "invalid port name"),
    Case("we-port-number", WE, "{address: 10.0.0.1, ports: {http: 70000}}", "spec.ports[http]", "1-65535"),
    Case("we-labels", WE, "{address: 10.0.0.1, labels: {'a/b/c': x}}", "spec.labels[a/b/c]", "invalid label key"),
    Case("we-weight-type", WE, "{address: 10.0.0.1, weight: -1}", "spec.weight", "out of range for uint32"),
    Case("wg-no-template", WG, "{metadata: {labels: {app: a}}}", "spec.template", "a template is required"),
    Case("wg-metadata-labels", WG, "{template: {}, metadata: {labels: {app: 'a b'}}}", "spec.metadata.labels[app]",
         "invalid label value"),
    Case("wg-template-port", WG, "{template: {ports: {http: 0}}}", "spec.template.ports[http]", "1-65535"),
    Case("wg-probe-no-method", WG, "{template: {}, probe: {periodSeconds: 5}}", "spec.probe",
         "needs one of httpGet, tcpSocket, grpc or exec"),
    Case("wg-probe-negative", WG, "{template: {}, probe: {periodSeconds: -5, tcpSocket: {port: 80}}}",
         "spec.probe.periodSeconds", "must not be negative"),
    Case("wg-probe-http-port", WG, "{template: {}, probe: {httpGet: {path: /ready}}}", "spec.probe.httpGet.port",
         "1-65535"),
    Case("wg-probe-scheme", WG, "{template: {}, probe: {httpGet: {port: 80, scheme: FTP}}}",
         "spec.probe.httpGet.scheme", "HTTP"),
    Case("wg-probe-header", WG, "{template: {}, probe: {httpGet: {port: 80, httpHeaders: [{name: 'a b'}]}}}",
         "spec.probe.httpGet.httpHeaders[0].name", "not a valid header name"),
    Case("wg-probe-exec", WG, "{template: {}, probe: {exec: {}}}", "spec.probe.exec.command", "is required"),
    Case("wg-probe-two-methods", WG, "{template: {}, probe: {exec: {command: [x]}, tcpSocket: {port: 1}}}",
         "spec.probe", "only one of httpGet, tcpSocket, exec, grpc"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_rejected(case: Case) -> None:
    assert_rejected(case)
