"""google.rpc status codes, as Mixer's handlers answer, and what Envoy's client sees.

Mixer's proxy turned a denied check into an HTTP status by the standard gRPC-to-HTTP
mapping and a body `<CODE>:<handler>:<message>`; the same answer comes from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from libs.mixer import CODE_NAMES, grpc_code_to_http

OK = 0
NOT_FOUND = 5
PERMISSION_DENIED = 7
RESOURCE_EXHAUSTED = 8
UNAVAILABLE = 14



@dataclass(frozen=True)
class Status:
    code: int = OK
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.code == OK

    @property
    def http(self) -> int:
        return grpc_code_to_http(self.code)

    def body(self, handler: str) -> str:
        name = CODE_NAMES[self.code] if 0 <= self.code < len(CODE_NAMES) else str(self.code)
        return f"{name}:{handler}:{self.message}" if handler else f"{name}:{self.message}"
