"""The skeleton every Mizzen service runs on.

A service's entry point loads its settings (`load_settings`), configures logging
(`configure_logging`) and hands its async `run()` to `run_service`, which installs uvloop
and returns only after the service has stopped.  Inside `run()` a `Supervisor` owns every
background task, a `Readiness` gates `/readyz`, and `MonitoringServer` serves `/healthz`,
`/readyz`, `/metrics` and `/version` (`build_info`).
"""

from libs.runtime._errors import FatalServiceError, SettingsError
from libs.runtime._grpc import serve_grpc
from libs.runtime._logging import configure_logging
from libs.runtime._main import run_service
from libs.runtime._monitoring import MonitoringServer
from libs.runtime._readiness import Readiness
from libs.runtime._settings import knob, load_settings
from libs.runtime._supervisor import Backoff, Supervisor
from libs.runtime._version import build_info, version

__all__ = [
    "Backoff",
    "FatalServiceError",
    "MonitoringServer",
    "Readiness",
    "SettingsError",
    "Supervisor",
    "build_info",
    "configure_logging",
    "knob",
    "load_settings",
    "run_service",
    "serve_grpc",
    "version",
]
