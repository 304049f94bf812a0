"""Code shared by Mizzen's services: runtime, bus, config model, Envoy helpers."""
