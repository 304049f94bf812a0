"""google.rpc status codes as Mixer's handlers answer them, and the HTTP status Envoy's
client shows for each (googleapis' mapping, which Mixer's proxy used).  Pilot reads it to
choose a check's transport; the policy service to answer."""

from __future__ import annotations

CODE_NAMES = ("OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
              "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
              "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED")
HTTP_STATUS = (200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401)
# Mixer's denier answers FAILED_PRECONDITION when its params give no status.
DENIER_DEFAULT_CODE = 9


def grpc_code_to_http(code: int) -> int:
    return HTTP_STATUS[code] if 0 <= code < len(HTTP_STATUS) else 500
