"""Asking citadel for a certificate: Istio's CreateCertificate over TLS, with a bearer
token re-read for every request (a rotated projected token is picked up).  Used by the
agent (workload certificates) and the sidecar injector (its webhook's certificate).

The roots that citadel's own TLS certificate must chain to may come from a source that is
asked before every request (`root_file`: citadel's root-cert.pem, or the mounted
`istio-ca-root-cert`): while citadel rotates its root that bundle holds the old and the new
root, and citadel's certificate moves to the new one, so a client that read the file once
would lose citadel.  The bundle's first certificate is the root citadel signs with now
(`signing_root`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import grpc
import structlog

from libs.pki._errors import InvalidPem
from libs.pki._pem import fingerprint, load_certs
from libs.proto_gen.istio.v1.auth import ca_pb2, ca_pb2_grpc

log = structlog.get_logger(__name__)

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


def root_file(path: Path, initial: bytes) -> Callable[[], bytes]:
    """The PEM roots in `path`, read anew at every call; `initial` (what was read at start),
    then the last good read, while the file is unreadable or holds no certificate (a
    ConfigMap mount being swapped, a half-written file)."""
    last = [initial]
    problem = [""]

    def read() -> bytes:
        try:
            data = path.read_bytes()
            load_certs(data, what=str(path))
        except (OSError, InvalidPem) as exc:
            if problem[0] != str(exc):
                log.warning("cannot read citadel's roots; using the last good ones", path=str(path), error=str(exc))
            problem[0] = str(exc)
            return last[0]
        problem[0] = ""
        last[0] = data
        return data

    return read


class CitadelClient:
    def __init__(self, address: str, root_pem: bytes | Callable[[], bytes], token: Callable[[], str], *,
                 server_name: str = "", timeout_s: float = 10.0) -> None:
        """`root_pem`: the roots citadel's TLS certificate chains to, or a source of them asked
        before every request (a changed answer makes a new channel)."""
        self._options: list[tuple[str, str | int]] = [("grpc.initial_reconnect_backoff_ms", 100)]
        if server_name:
            self._options.append(("grpc.ssl_target_name_override", server_name))
        # Only a source can tell that citadel moved to another root; fixed bytes never change.
        self._dynamic = callable(root_pem)
        self._roots = root_pem if callable(root_pem) else (lambda: root_pem)
        self._token = token
        self._timeout_s = timeout_s
        self.address = address
        self._channel_roots = self._roots()
        self._channel = self._open(self._channel_roots)
        self._stub = ca_pb2_grpc.IstioCertificateServiceStub(self._channel)

    def _open(self, roots: bytes) -> grpc.aio.Channel:
        return grpc.aio.secure_channel(self.address, grpc.ssl_channel_credentials(roots), options=self._options)

    def signing_root(self) -> str | None:
        """Fingerprint of the root citadel signs with now (the first of its bundle), or None
        when the roots are fixed bytes or cannot be read."""
        if not self._dynamic:
            return None
        try:
            return fingerprint(load_certs(self._roots(), what="citadel's roots")[0])
        except InvalidPem:
            return None

    async def _current_channel(self) -> None:
        roots = self._roots()
        if roots == self._channel_roots:
            return
        old = self._channel
        self._channel_roots = roots
        self._channel = self._open(roots)
        self._stub = ca_pb2_grpc.IstioCertificateServiceStub(self._channel)
        log.info("citadel's roots changed; new channel", citadel=self.address,
                 roots=roots.count(b"BEGIN CERTIFICATE"))
        await old.close()

    async def create_certificate(self, csr_pem: str, ttl_s: int,
                                 metadata: Mapping[str, str] | None = None) -> list[str]:
        """The chain (leaf ... root) citadel signs for `csr_pem`."""
        await self._current_channel()
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
