"""`python -m services.galley`"""

import os
import sys

from libs.runtime import configure_logging, load_settings, run_service
from services.galley.server import run
from services.galley.settings import GalleySettings


def main() -> int:
    settings = load_settings(GalleySettings, sys.argv[1:], os.environ, prog="python -m services.galley")
    configure_logging(settings.log_level, json=settings.log_json, service="galley")
    return run_service(lambda: run(settings))


if __name__ == "__main__":
    sys.exit(main())
