"""`python -m services.citadel` runs citadel; `python -m services.citadel mint-token ...` mints a token."""

import os
import sys

from libs.runtime import configure_logging, load_settings, run_service
from services.citadel.settings import CitadelSettings


def main() -> int:
    if sys.argv[1:2] == ["mint-token"]:
        from services.citadel.cli import mint_token_command

        return mint_token_command(sys.argv[2:], os.environ)
    from services.citadel.server import run

    settings = load_settings(CitadelSettings, sys.argv[1:], os.environ, prog="python -m services.citadel")
    configure_logging(settings.log_level, json=settings.log_json, service="citadel")
    return run_service(lambda: run(settings, os.environ))


if __name__ == "__main__":
    sys.exit(main())
