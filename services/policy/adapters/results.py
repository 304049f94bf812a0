"""What a check adapter answers: a status, and for how long and how many uses it holds."""

from __future__ import annotations

from dataclasses import dataclass

from services.policy.status import Status


@dataclass(frozen=True)
class CheckResult:
    status: Status
    valid_duration_s: float
    valid_use_count: int
