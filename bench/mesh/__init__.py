"""The local mesh's benchmark: time to a SYNCED Bookinfo, and latency added per hop."""
