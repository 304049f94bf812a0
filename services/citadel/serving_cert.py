"""The CSR API's own TLS certificate: issued by the CA at start, renewed at half its life.

gRPC asks `fetch()` for the certificate configuration on each new TLS handshake (from a
gRPC thread), so renewal needs no restart and no timer task.  When a root rotation makes
the CA sign with a new root, `replace_ca(..., renew=True)` makes the next handshake get a
certificate from it (clients trust both roots by then).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import grpc
import structlog

from libs.pki import KeyType, key_pem, parse_key_type
from services.citadel.ca import CertificateAuthority

log = structlog.get_logger(__name__)


class ServingCredentials:
    def __init__(self, ca: CertificateAuthority, hosts: tuple[str, ...], ttl_s: int, *,
                 key_type: KeyType | None = None, clock: Callable[[], float] = time.time) -> None:
        if not hosts:
            raise ValueError("the CSR API's serving certificate needs at least one host name or IP")
        self.ca = ca
        self.hosts = hosts
        self.ttl_s = ttl_s
        self.key_type = key_type or parse_key_type("ec-p256")
        self._clock = clock
        self._lock = threading.Lock()
        self._renew_at = 0.0
        self.serial = 0
        self._config = self._issue()

    def _issue(self) -> object:
        key = self.key_type.generate()
        issued = self.ca.issue_serving(key.public_key(), self.hosts, self.ttl_s)
        lifetime = issued.cert.not_valid_after_utc.timestamp() - self._clock()
        self._renew_at = self._clock() + lifetime / 2
        self.serial = issued.cert.serial_number
        log.info("serving certificate issued", hosts=list(self.hosts), serial=f"{self.serial:x}",
                 not_after=issued.cert.not_valid_after_utc.isoformat())
        # The chain without the root: clients hold the root already.
        chain = "".join(issued.chain[:-1]).encode()
        return grpc.ssl_server_certificate_configuration([(key_pem(key), chain)])

    def replace_ca(self, ca: CertificateAuthority, *, renew: bool) -> None:
        with self._lock:
            self.ca = ca
            if renew:
                self._renew_at = 0.0

    def fetch(self) -> object | None:
        """gRPC's fetcher: a new configuration when renewal is due, else None (keep the current)."""
        with self._lock:
            if self._clock() < self._renew_at:
                return None
            try:
                self._config = self._issue()
            except Exception:
                # Keep serving the current certificate; the next handshake tries again.
                log.exception("renewing the serving certificate failed")
                return None
            return self._config

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(self._config, self.fetch, require_client_authentication=False)
