"""The package's two errors: `CexlError` for text that is not a well-formed, well-typed
expression (found when a config is loaded), `EvaluationError` for an evaluation that fails
on one request's attributes."""

from __future__ import annotations


class CexlError(ValueError):
    """A syntax or type error.  `position` is the 0-based offset in the expression's text
    of the token at fault (-1 when no single token is), `reason` says what is wrong."""

    def __init__(self, position: int, reason: str) -> None:
        # Both go to args so that the error survives pickling (multiprocessing, logging).
        super().__init__(position, reason)
        self.position = position
        self.reason = reason

    def __str__(self) -> str:
        return f"position {self.position}: {self.reason}"


class EvaluationError(Exception):
    """An evaluation failed: an attribute it needs is absent (with no `|` alternative), a
    conversion such as ip("x") failed, or an attribute's value is not of its declared type."""
