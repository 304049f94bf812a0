"""Telemetry: Istio's standard metrics, access logs and traces from Envoy's access log and Zipkin streams."""
