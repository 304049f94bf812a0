"""Pilot's secure xDS port (Istio's 15012): the same ADS over TLS, so a proxy checks it is
talking to pilot before it takes config.  The certificate names pilot's Service DNS names
(`istiod.istio-system.svc`, ...), is signed by citadel for pilot's identity, and is
renewed in place: gRPC asks for the current one on each new handshake.  Plain-text 15010
stays for the local mesh.
"""

from __future__ import annotations

import threading

import grpc

from libs.pki import Issued


class GrpcTls:
    """The xDS server's TLS credentials, following the newest certificate."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._config: object | None = None
        self._version = 0
        self._served = 0

    def install(self, issued: Issued) -> None:
        with self._lock:
            self._config = grpc.ssl_server_certificate_configuration([(issued.key_pem, issued.chain_pem)])
            self._version += 1

    def _fetch(self) -> object | None:
        """gRPC's fetcher (from a gRPC thread): a configuration when a newer one exists."""
        with self._lock:
            if self._served == self._version:
                return None
            self._served = self._version
            return self._config

    def credentials(self) -> grpc.ServerCredentials:
        """Server credentials; call after the first certificate was installed."""
        with self._lock:
            if self._config is None:
                raise RuntimeError("no certificate installed yet")
            self._served = self._version
            return grpc.dynamic_ssl_server_credentials(self._config, self._fetch, require_client_authentication=False)
