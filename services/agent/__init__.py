"""The agent beside every Envoy (Istio's pilot-agent): writes the bootstrap, runs and
supervises Envoy, and (with citadel) holds the workload's identity."""
