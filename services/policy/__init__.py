"""Policy: the check and quota service of Istio 1.0/1.1 (Mixer's `istio-policy`), served to
Envoy through ext_authz and the rate-limit API."""
