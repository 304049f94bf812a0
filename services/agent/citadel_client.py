"""Talking to citadel: Istio's CreateCertificate over TLS with a bearer token."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc

from libs.proto_gen.istio.v1.auth import ca_pb2, ca_pb2_grpc
from services.agent.errors import CitadelRefused, CitadelUnavailable, ConfigurationError
from services.agent.settings import AgentSettings

# Worth retrying soon: citadel (or the path to it) is down or slow.
TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                       grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.CANCELLED})


def token_source(settings: AgentSettings) -> Callable[[], str]:
    """The bearer token, re-read from its file for every CSR (a rotated token is picked up)."""
    if settings.citadel_token_file is not None:
        path: Path = settings.citadel_token_file

        def from_file() -> str:
            try:
                token = path.read_text().strip()
            except OSError as exc:
                raise CitadelRefused("NO_TOKEN", f"cannot read the token file {path}: {exc.strerror}") from exc
            if not token:
                raise CitadelRefused("NO_TOKEN", f"the token file {path} is empty")
            return token

        return from_file
    if settings.citadel_token:
        token = settings.citadel_token
        return lambda: token
    raise ConfigurationError("identity is enabled but neither citadel_token_file nor citadel_token is set")


class CitadelClient:
    def __init__(self, address: str, root_pem: bytes, token: Callable[[], str], *, server_name: str = "",
                 timeout_s: float = 10.0) -> None:
        options: list[tuple[str, str | int]] = [("grpc.initial_reconnect_backoff_ms", 100)]
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        self._channel = grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(root_pem), options=options)
        self._stub = ca_pb2_grpc.IstioCertificateServiceStub(self._channel)
        self._token = token
        self._timeout_s = timeout_s
        self.address = address

    @classmethod
    def from_settings(cls, settings: AgentSettings) -> CitadelClient:
        if settings.citadel_root_cert is None:
            raise ConfigurationError("identity is enabled but citadel_root_cert is not set (the root that "
                                     "citadel's TLS certificate chains to)")
        try:
            root = settings.citadel_root_cert.read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"cannot read citadel_root_cert {settings.citadel_root_cert}: "
                                     f"{exc.strerror}") from exc
        return cls(settings.citadel_address, root, token_source(settings),
                   server_name=settings.citadel_server_name, timeout_s=settings.citadel_timeout_s)

    async def create_certificate(self, csr_pem: str, ttl_s: int, metadata: dict[str, str]) -> list[str]:
        request = ca_pb2.IstioCertificateRequest(csr=csr_pem, validity_duration=ttl_s)
        request.metadata.update(metadata)
        try:
            response = await self._stub.CreateCertificate(
                request, metadata=(("authorization", f"Bearer {self._token()}"),), timeout=self._timeout_s,
                wait_for_ready=False)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in TRANSIENT:
                raise CitadelUnavailable(f"citadel at {self.address} unavailable ({exc.code().name}): "
                                         f"{exc.details()}") from exc
            raise CitadelRefused(exc.code().name, exc.details() or "") from exc
        return list(response.cert_chain)

    async def close(self) -> None:
        await self._channel.close()
