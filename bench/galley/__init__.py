"""Galley's benchmark: validate and publish 10,000 resources; validate Istio's corpus."""
