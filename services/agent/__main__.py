"""`python -m services.agent`"""

import os
import sys

from libs.runtime import configure_logging, load_settings, run_service
from services.agent.server import run
from services.agent.settings import AgentSettings


def main() -> int:
    settings = load_settings(AgentSettings, sys.argv[1:], os.environ, prog="python -m services.agent")
    configure_logging(settings.log_level, json=settings.log_json, service="agent")
    return run_service(lambda: run(settings, os.environ))


if __name__ == "__main__":
    sys.exit(main())
