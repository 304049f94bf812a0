"""The webhook's TLS: citadel's certificate (libs.pki ServingCertificate obtains and renews
it, the key never on disk) behind one SSL context that never changes (libs.pki ServerTls:
every new handshake gets the newest certificate), and /readyz held until the first one.
"""

from __future__ import annotations

from libs.pki import Issued, ServerTls
from libs.runtime import Readiness

SERVING_CERT = "serving-cert"


class WebhookTls(ServerTls):
    """The webhook's SSL context; ready once citadel signed the first certificate."""

    def __init__(self, readiness: Readiness) -> None:
        super().__init__("webhook")
        self.readiness = readiness
        readiness.require(SERVING_CERT)

    def install(self, issued: Issued) -> None:
        super().install(issued)
        self.readiness.mark(SERVING_CERT)
