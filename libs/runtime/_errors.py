"""Errors raised by the service runtime."""


class RuntimeFailure(Exception):
    """Root of the runtime's errors."""


class SettingsError(RuntimeFailure):
    """A flag or environment variable holds a value its setting cannot take."""

    def __init__(self, setting: str, source: str, reason: str) -> None:
        super().__init__(f"setting {setting} (from {source}): {reason}")
        self.setting = setting
        self.source = source
        self.reason = reason


class FatalServiceError(RuntimeFailure):
    """A supervised task failed in a way that must stop the service."""

    def __init__(self, task: str, cause: BaseException) -> None:
        super().__init__(f"task {task!r} failed: {cause!r}")
        self.task = task
        self.cause = cause
