"""google.rpc status codes, as Mixer's handlers answer, and what Envoy's client sees.

Mixer's proxy turned a denied check into an HTTP status by the standard gRPC-to-HTTP
mapping and a body `<CODE>:<handler>:<message>`; the same answer comes from here.
"""

from __future__ import annotations

from dataclasses import dataclass

OK = 0
NOT_FOUND = 5
PERMISSION_DENIED = 7
RESOURCE_EXHAUSTED = 8
UNAVAILABLE = 14

CODE_NAMES = ("OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
              "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
              "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED")
# google.rpc.Code -> HTTP status (googleapis' mapping, which Mixer's client used).
HTTP_STATUS = (200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401)


@dataclass(frozen=True)
class Status:
    code: int = OK
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.code == OK

    @property
    def http(self) -> int:
        return HTTP_STATUS[self.code] if 0 <= self.code < len(HTTP_STATUS) else 500

    def body(self, handler: str) -> str:
        name = CODE_NAMES[self.code] if 0 <= self.code < len(CODE_NAMES) else str(self.code)
        return f"{name}:{handler}:{self.message}" if handler else f"{name}:{self.message}"
