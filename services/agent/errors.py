"""The agent's errors: one root, a class per way identity or bootstrap can fail."""

from __future__ import annotations


class AgentError(Exception):
    """Root of the agent's errors."""


class ConfigurationError(AgentError):
    """Settings that cannot work together (e.g. identity on without a token); fatal at start."""


class BootstrapOverrideError(ConfigurationError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"bootstrap override {path}: {reason}")
        self.path = path
        self.reason = reason


class IdentityError(AgentError):
    """Getting a workload certificate failed; retried with backoff."""


class CitadelRefused(IdentityError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"citadel refused the CSR ({code}): {message}")
        self.code = code
        self.message = message


class CitadelUnavailable(IdentityError):
    pass


class InvalidCertificateResponse(IdentityError):
    """Citadel answered, but not with a chain for our key and identity."""
