"""The first demo: an ingress gateway routing to two echo upstreams by Istio YAML."""
