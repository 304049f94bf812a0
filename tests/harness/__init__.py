"""The test harness: real nats-server, real Envoy, Mizzen's services as real processes,
on free loopback ports, always cleaned up."""
