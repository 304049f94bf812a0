"""Asking citadel for a certificate: Istio's CreateCertificate over TLS, with a bearer
token re-read for every request (a rotated projected token is picked up).  Used by the
agent (workload certificates) and the sidecar injector (its webhook's certificate)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import grpc

from libs.proto_gen.istio.v1.auth import ca_pb2, ca_pb2_grpc

# Worth retrying soon: citadel (or the path to it) is down or slow.
TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                       grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.CANCELLED})


class CitadelError(Exception):
    """Citadel gave no certificate; callers retry with backoff."""


class CitadelUnavailable(CitadelError):
    """Citadel did not answer (down, unreachable, slow)."""


class CitadelRefused(CitadelError):
    """Citadel answered no (a bad or missing token, a name the caller may not have)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"citadel refused the CSR ({code}): {message}")
        self.code = code
        self.message = message


def token_from_file(path: Path) -> Callable[[], str]:
    """The token in `path`, read anew at every call."""
    def read() -> str:
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise CitadelRefused("NO_TOKEN", f"cannot read the token file {path}: {exc.strerror}") from exc
        if not token:
            raise CitadelRefused("NO_TOKEN", f"the token file {path} is empty")
        return token

    return read


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

    async def create_certificate(self, csr_pem: str, ttl_s: int,
                                 metadata: Mapping[str, str] | None = None) -> list[str]:
        """The chain (leaf ... root) citadel signs for `csr_pem`."""
        request = ca_pb2.IstioCertificateRequest(csr=csr_pem, validity_duration=ttl_s)
        request.metadata.update(metadata or {})
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
