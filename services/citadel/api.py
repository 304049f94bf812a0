"""The CSR API at the gRPC edge: Istio's IstioCertificateService/CreateCertificate.

Every refusal is mapped to a status code here, once: a bad token is UNAUTHENTICATED, a
token that cannot be checked now (API server down) UNAVAILABLE, a malformed CSR or a
too-long validity INVALID_ARGUMENT, a CSR for someone else's name PERMISSION_DENIED.
Nothing is signed unless every check passed.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import grpc
import structlog

from libs.proto_gen.istio.v1.auth import ca_pb2, ca_pb2_grpc
from services.citadel.auth import Caller, TokenAuthenticator, bearer_token
from services.citadel.ca import CertificateAuthority, IssuedCertificate, check_csr
from services.citadel.errors import (
    AuthenticatorUnavailable,
    IdentityMismatch,
    InvalidCsr,
    InvalidTtl,
    RequestError,
    Unauthenticated,
)
from services.citadel.metrics import CitadelMetrics

log = structlog.get_logger(__name__)

STATUS: dict[type[RequestError], tuple[grpc.StatusCode, str]] = {
    Unauthenticated: (grpc.StatusCode.UNAUTHENTICATED, "unauthenticated"),
    AuthenticatorUnavailable: (grpc.StatusCode.UNAVAILABLE, "authenticator_unavailable"),
    InvalidCsr: (grpc.StatusCode.INVALID_ARGUMENT, "invalid_csr"),
    InvalidTtl: (grpc.StatusCode.INVALID_ARGUMENT, "invalid_ttl"),
    IdentityMismatch: (grpc.StatusCode.PERMISSION_DENIED, "permission_denied"),
}


class CsrHandler:
    """Authenticate, check, sign: the request's whole life apart from gRPC."""

    def __init__(self, ca: CertificateAuthority, authenticator: TokenAuthenticator) -> None:
        self.ca = ca
        self.authenticator = authenticator

    async def handle(self, csr_pem: str, requested_ttl_s: int,
                     metadata: Iterable[tuple[str, str | bytes]]) -> tuple[Caller, IssuedCertificate]:
        # Authentication comes first: an unknown caller learns nothing about its CSR.
        caller = await self.authenticator.authenticate(bearer_token(metadata))
        checked = check_csr(csr_pem)
        issued = self.ca.sign_workload(checked, self.ca.identity(caller.namespace, caller.service_account),
                                       requested_ttl_s)
        return caller, issued


class CertificateService(ca_pb2_grpc.IstioCertificateServiceServicer):
    def __init__(self, handler: CsrHandler, metrics: CitadelMetrics) -> None:
        self.handler = handler
        self.metrics = metrics

    async def CreateCertificate(self, request: ca_pb2.IstioCertificateRequest,
                                context: grpc.aio.ServicerContext) -> ca_pb2.IstioCertificateResponse:
        started = time.perf_counter()
        self.metrics.csr.inc()
        try:
            caller, issued = await self.handler.handle(request.csr, request.validity_duration,
                                                       context.invocation_metadata() or ())
        except RequestError as exc:
            code, reason = STATUS.get(type(exc), (grpc.StatusCode.INVALID_ARGUMENT, "invalid_request"))
            self._count_refusal(exc, reason)
            self.metrics.latency.labels(reason).observe(time.perf_counter() - started)
            log.warning("csr refused", code=code.name, reason=str(exc), peer=context.peer())
            await context.abort(code, str(exc))
        except Exception:
            # A bug in signing must not take citadel down; the caller retries.
            self.metrics.sign_errors.labels("internal").inc()
            log.exception("signing failed", peer=context.peer())
            await context.abort(grpc.StatusCode.INTERNAL, "citadel failed to sign the CSR; see its log")
        self.metrics.issued.inc()
        self.metrics.latency.labels("issued").observe(time.perf_counter() - started)
        log.info("certificate issued", identity=f"{caller}", serial=f"{issued.cert.serial_number:x}",
                 not_after=issued.cert.not_valid_after_utc.isoformat(), peer=context.peer())
        return ca_pb2.IstioCertificateResponse(cert_chain=list(issued.chain))

    def _count_refusal(self, exc: RequestError, reason: str) -> None:
        if isinstance(exc, Unauthenticated):
            self.metrics.auth_failures.inc()
        elif isinstance(exc, InvalidCsr):
            self.metrics.csr_parsing_errors.inc()
        else:
            self.metrics.sign_errors.labels(reason).inc()
