"""`python -m services.pilot`"""

import os
import sys

# gRPC's EventEngine listener (on by default in grpcio 1.85) hands each connection's reads and
# writes to its own thread pool, which then wakes the completion queue's poller thread, which
# wakes the event loop.  Off, the poller thread does the socket I/O itself.  At 1,000 streams a
# push cost pilot 5 - 27% less CPU that way, and an endpoint change reached the last proxy
# 17 - 30% sooner (docs/pilot-scaling.md, "gRPC's older listener").  gRPC reads the variable once,
# when it loads, so it is set before anything imports grpc; a value the operator sets wins.
GRPC_EXPERIMENTS = "-event_engine_listener"


def main() -> int:
    os.environ.setdefault("GRPC_EXPERIMENTS", GRPC_EXPERIMENTS)
    from libs.runtime import configure_logging, load_settings, run_service
    from services.pilot.server import run
    from services.pilot.settings import PilotSettings

    settings = load_settings(PilotSettings, sys.argv[1:], os.environ, prog="python -m services.pilot")
    configure_logging(settings.log_level, json=settings.log_json, service="pilot")
    return run_service(lambda: run(settings))


if __name__ == "__main__":
    sys.exit(main())
