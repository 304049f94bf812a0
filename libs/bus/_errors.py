"""Errors of the bus; NATS's own exceptions are wrapped, never leaked."""


class BusError(Exception):
    """Root of every bus error."""


class BusUnavailable(BusError):
    """NATS could not be reached (or JetStream is not enabled on it)."""


class KeyNotFound(BusError):
    def __init__(self, bucket: str, key: str) -> None:
        super().__init__(f"{bucket}: no key {key!r}")
        self.bucket = bucket
        self.key = key
