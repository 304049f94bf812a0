"""Translation: (proxy, push context) -> Envoy v3 resources.  Pure: no I/O, no globals."""
