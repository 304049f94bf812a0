"""Pilot's convergence baseline: config change to route in traffic on every Envoy."""
