"""The agent's citadel client: libs.pki's, configured from the agent's settings."""

from __future__ import annotations

from collections.abc import Callable

from libs.pki import CitadelClient, root_file, token_from_file
from services.agent.errors import ConfigurationError
from services.agent.settings import AgentSettings


def token_source(settings: AgentSettings) -> Callable[[], str]:
    """The bearer token, re-read from its file for every CSR (a rotated token is picked up)."""
    if settings.citadel_token_file is not None:
        return token_from_file(settings.citadel_token_file)
    if settings.citadel_token:
        token = settings.citadel_token
        return lambda: token
    raise ConfigurationError("identity is enabled but neither citadel_token_file nor citadel_token is set")


def citadel_client(settings: AgentSettings, extra_roots: Callable[[], bytes] = lambda: b"") -> CitadelClient:
    """Citadel's TLS certificate is checked against citadel_root_cert (re-read for every CSR)
    and `extra_roots` (the mesh's trust bundle): while citadel rotates its root, its own
    certificate moves to the new one, which the bundle brings first."""
    if settings.citadel_root_cert is None:
        raise ConfigurationError("identity is enabled but citadel_root_cert is not set (the root that "
                                 "citadel's TLS certificate chains to)")
    try:
        root = settings.citadel_root_cert.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read citadel_root_cert {settings.citadel_root_cert}: "
                                 f"{exc.strerror}") from exc
    from_file = root_file(settings.citadel_root_cert, root)
    return CitadelClient(settings.citadel_address, lambda: from_file() + extra_roots(), token_source(settings),
                         server_name=settings.citadel_server_name, timeout_s=settings.citadel_timeout_s)
