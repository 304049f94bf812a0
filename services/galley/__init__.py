"""Galley: the one door config comes in by.  Sources feed one pipeline that validates
with Istio's rules and publishes what is valid to the `mesh-config` KV bucket."""
