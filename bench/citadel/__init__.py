"""Citadel's benchmarks: CSR signing throughput through the gRPC API beside the raw
`cryptography` rate, and the time from an agent's start to its Envoy holding a certificate."""
