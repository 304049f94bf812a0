"""`python -m services.sidecar_injector`"""

import os
import sys

from libs.runtime import configure_logging, load_settings, run_service
from services.sidecar_injector.server import run
from services.sidecar_injector.settings import InjectorSettings


def main() -> int:
    settings = load_settings(InjectorSettings, sys.argv[1:], os.environ, prog="python -m services.sidecar_injector")
    configure_logging(settings.log_level, json=settings.log_json, service="sidecar-injector")
    return run_service(lambda: run(settings))


if __name__ == "__main__":
    sys.exit(main())
