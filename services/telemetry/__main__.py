"""`python -m services.telemetry`"""

import os
import sys

from libs.runtime import configure_logging, load_settings, run_service
from services.telemetry.server import run
from services.telemetry.settings import TelemetrySettings


def main() -> int:
    settings = load_settings(TelemetrySettings, sys.argv[1:], os.environ, prog="python -m services.telemetry")
    configure_logging(settings.log_level, json=settings.log_json, service="telemetry")
    return run_service(lambda: run(settings))


if __name__ == "__main__":
    sys.exit(main())
