"""Developer and operator tools: `mizzenctl`, the protobuf generator."""
