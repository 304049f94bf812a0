"""`python -m services.pilot`"""

import os
import sys

from libs.runtime import configure_logging, load_settings, run_service
from services.pilot.server import run
from services.pilot.settings import PilotSettings


def main() -> int:
    settings = load_settings(PilotSettings, sys.argv[1:], os.environ, prog="python -m services.pilot")
    configure_logging(settings.log_level, json=settings.log_json, service="pilot")
    return run_service(lambda: run(settings))


if __name__ == "__main__":
    sys.exit(main())
