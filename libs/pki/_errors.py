"""Errors of libs.pki: every one says what was wrong and why."""


class PkiError(ValueError):
    """Root of libs.pki's errors."""


class InvalidSpiffeId(PkiError):
    def __init__(self, value: str, reason: str) -> None:
        super().__init__(f"{value!r} is not a SPIFFE id of the form spiffe://<trust-domain>/ns/<ns>/sa/<sa>: {reason}")
        self.value = value
        self.reason = reason


class InvalidPem(PkiError):
    """PEM text that does not hold what it should (certificates, a private key)."""


class UnsupportedKeyType(PkiError):
    pass
