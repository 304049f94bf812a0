"""The agent's errors: one root, a class per way identity, bootstrap or a credential can fail."""

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


class AppProbersError(ConfigurationError):
    """The app probers the injector handed over (ISTIO_KUBE_APP_PROBERS) cannot be used."""

    SOURCES = "--kube-app-probers, MIZZEN_KUBE_APP_PROBERS or ISTIO_KUBE_APP_PROBERS"

    def __init__(self, reason: str) -> None:
        super().__init__(f"setting kube_app_probers (from {self.SOURCES}): {reason}")
        self.reason = reason


class IdentityError(AgentError):
    """Getting a workload certificate failed; retried with backoff."""


class InvalidCertificateResponse(IdentityError):
    """Citadel answered, but not with a chain for our key and identity."""


class CredentialError(AgentError):
    """A secret Envoy asked for cannot be served (yet); the request stays pending."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what}: {reason}")
        self.what = what
        self.reason = reason


class CredentialNotFound(CredentialError):
    """Missing or unreadable: the secret, its files, or the source to read it from."""


class InvalidCredential(CredentialError):
    """Present but unusable: garbage PEM, a key that is not the certificate's, missing keys."""


class InvalidSecretName(CredentialError):
    """An SDS resource name the agent does not understand or will not serve to this proxy."""


class CredentialRefused(CredentialError):
    """A secret this proxy may not have (a sidecar asking for a gateway credential, another
    namespace's secret)."""
