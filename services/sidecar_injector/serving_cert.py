"""The webhook's TLS: citadel's certificate (libs.pki ServingCertificate obtains and renews
it, the key never on disk) behind one SSL context that never changes.

The chain and key reach OpenSSL through memory-only files (memfd).  Every new TLS
handshake picks the newest certificate: the server's context has no certificate of its
own, and its SNI callback (OpenSSL calls it on every handshake, SNI or not) hands the
connection the current context.  Connections already open keep theirs.
"""

from __future__ import annotations

import os
import ssl

from libs.pki import Issued
from libs.runtime import Readiness

SERVING_CERT = "serving-cert"


def ssl_context(issued: Issued) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    files = []
    try:
        for name, data in (("chain", issued.chain_pem), ("key", issued.key_pem)):
            fd = os.memfd_create(f"webhook-{name}", os.MFD_CLOEXEC)
            files.append(fd)
            os.write(fd, data)
        context.load_cert_chain(f"/proc/self/fd/{files[0]}", f"/proc/self/fd/{files[1]}")
    finally:
        for fd in files:
            os.close(fd)
    return context


class WebhookTls:
    """The server's SSL context, pointing each handshake at the newest certificate."""

    def __init__(self, readiness: Readiness) -> None:
        self.readiness = readiness
        readiness.require(SERVING_CERT)
        self._current: ssl.SSLContext | None = None
        self.server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server_context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.server_context.sni_callback = self._select

    def install(self, issued: Issued) -> None:
        self._current = ssl_context(issued)
        self.readiness.mark(SERVING_CERT)

    def _select(self, connection: ssl.SSLObject, _server_name: str | None, _context: ssl.SSLContext) -> None:
        if self._current is not None:
            connection.context = self._current
