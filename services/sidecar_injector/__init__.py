"""The sidecar injector: Kubernetes' mutating admission webhook that gives pods Istio's
sidecar (the `istio-init` capture container and the `istio-proxy` agent and Envoy).

What it owns: the HTTPS endpoint `/inject` (AdmissionReview v1 in, a JSON patch out) on
15017, and the serving certificate behind it.  Where its flows go:
- a review: `webhook.review` -> `libs.inject.inject` (Istio's decision, the rendered pod,
  a checked JSON patch) -> the response, errors mapped to admission statuses in one table;
- config: the injection config from files (Istio's mounted `istio-sidecar-injector`
  ConfigMap, `config_source.InjectionConfigFiles`, reloaded on change) and the mesh config
  from mesh-config in NATS (`config_source.MeshConfigWatch`), so the webhook injects what
  galley validated and pilot serves;
- the certificate: `serving_cert.ServingCertificate` asks citadel for one naming the
  injector's SPIFFE id and its Service's DNS name, and renews it without a restart (new
  TLS handshakes get the new one).
`server.run` wires these under one Supervisor; `/healthz`, `/readyz` and `/metrics` are on
the monitoring port.
"""
