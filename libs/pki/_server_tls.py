"""An HTTPS server's TLS from citadel's certificate, behind one SSL context that never changes.

For the control plane's admission webhooks (the injector's, galley's): `ServingCertificate`
obtains and renews the certificate and hands each one to `ServerTls.install`.  The chain
and key reach OpenSSL through memory-only files (memfd), never the disk.  Every new TLS
handshake picks the newest certificate: the server's context has no certificate of its
own, and its SNI callback (OpenSSL calls it on every handshake, SNI or not) hands the
connection the current context.  Connections already open keep theirs.
"""

from __future__ import annotations

import os
import ssl

from libs.pki._serving import Issued


def ssl_context(issued: Issued, *, name: str = "server") -> ssl.SSLContext:
    """A server context holding `issued`'s chain and key (loaded from memory, not disk)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    files = []
    try:
        for part, data in (("chain", issued.chain_pem), ("key", issued.key_pem)):
            fd = os.memfd_create(f"{name}-{part}", os.MFD_CLOEXEC)
            files.append(fd)
            os.write(fd, data)
        context.load_cert_chain(f"/proc/self/fd/{files[0]}", f"/proc/self/fd/{files[1]}")
    finally:
        for fd in files:
            os.close(fd)
    return context


class ServerTls:
    """The server's SSL context, pointing each handshake at the newest installed certificate."""

    def __init__(self, name: str = "server") -> None:
        self.name = name
        self._current: ssl.SSLContext | None = None
        self.server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server_context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.server_context.sni_callback = self._select

    @property
    def installed(self) -> bool:
        return self._current is not None

    def install(self, issued: Issued) -> None:
        self._current = ssl_context(issued, name=self.name)

    def _select(self, connection: ssl.SSLObject, _server_name: str | None, _context: ssl.SSLContext) -> None:
        if self._current is not None:
            connection.context = self._current
