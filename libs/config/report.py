"""What validation says to a person: one line per problem, shared by `mizzenctl validate`,
`mizzenctl apply` and galley's admission webhook, so all three print the same words."""

from __future__ import annotations

from dataclasses import dataclass, field

from libs.config._parse import ParseResult, warnings_of


@dataclass(frozen=True)
class Report:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Resources of kinds Mizzen does not serve: reported, not fatal.
    unsupported: list[str] = field(default_factory=list)
    valid: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def report(result: ParseResult, *, with_origin: bool = True) -> Report:
    warnings: list[str] = []
    for invalid in result.invalid:
        warnings.extend(f"{invalid.resource}: {w} (warning)" for w in invalid.warnings)
    for origin, resource in result.resources:
        prefix = f"{origin}: " if with_origin else ""
        warnings.extend(f"{prefix}{resource.ref}: {w}" for w in warnings_of(resource))
    return Report(
        errors=result.errors(with_origin=with_origin),
        warnings=warnings,
        unsupported=[str(u) if with_origin else f"{u.resource}: {u.reason}" for u in result.unsupported],
        valid=[resource.ref for _, resource in result.resources],
    )
