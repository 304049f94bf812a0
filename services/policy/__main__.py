"""`python -m services.policy`"""

import os
import sys

from libs.runtime import configure_logging, load_settings, run_service
from services.policy.server import run
from services.policy.settings import PolicySettings


def main() -> int:
    settings = load_settings(PolicySettings, sys.argv[1:], os.environ, prog="python -m services.policy")
    configure_logging(settings.log_level, json=settings.log_json, service="policy")
    return run_service(lambda: run(settings))


if __name__ == "__main__":
    sys.exit(main())
