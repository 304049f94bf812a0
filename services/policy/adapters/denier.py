"""The denier adapter: every check it is asked gets its configured status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from libs.config.durations import parse_duration
from libs.mixer import DENIER_DEFAULT_CODE
from services.policy.adapters.results import CheckResult
from services.policy.status import Status

# Mixer's denier defaults.
VALID_DURATION_S = 5.0
VALID_USE_COUNT = 1000


@dataclass(frozen=True)
class Denier:
    status: Status
    valid_duration_s: float = VALID_DURATION_S
    valid_use_count: int = VALID_USE_COUNT

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Denier:
        status = params.get("status", {})
        duration = params.get("validDuration")
        return cls(Status(int(status.get("code", DENIER_DEFAULT_CODE)), str(status.get("message", ""))),
                   float(parse_duration(duration)) if duration else VALID_DURATION_S,
                   int(params.get("validUseCount") or VALID_USE_COUNT))

    def check(self, instance: dict[str, Any]) -> CheckResult:
        return CheckResult(self.status, self.valid_duration_s, self.valid_use_count)
