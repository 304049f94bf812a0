"""Citadel: the mesh CA.  Signs workload CSRs over Istio's CSR API (gRPC + TLS), after
authenticating the caller's bearer token, and publishes the trust bundle on NATS."""
