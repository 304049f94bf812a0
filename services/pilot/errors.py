"""Pilot's errors: one root, one class per way pilot refuses a request.

The edges map each to a status code once: the xDS stream (`xds/server.py`) to a gRPC code
(`GRPC_STATUS` there), the debug API to an HTTP status (`HTTP_STATUS` in `server.py`,
handed to the monitoring server).  Nothing else in pilot knows about either protocol.
Invalid *config* is not here: galley refuses it before pilot sees it, and translation
turns what it cannot serve into warnings, never into a refused stream.
"""

from __future__ import annotations

from typing import Any


class PilotError(Exception):
    """Root of pilot's errors."""


class InconsistentConfig(PilotError):
    """Generated config names something it does not define (a cluster without its load
    assignment, a route to no cluster); serving it would break traffic, so the proxy keeps
    what it has.  A translation bug, never the user's config: logged, not answered."""


class NotReady(PilotError):
    """Pilot has not loaded its config yet: answering now would tell a proxy to delete
    everything, or compare a dry run with nothing.  Retrying later succeeds."""


class InvalidNode(PilotError, ValueError):
    """A node id or metadata pilot cannot serve (not `<type>~<ip>~<pod>.<ns>~<domain>`)."""


class ProxyIdMissing(PilotError):
    """A debug request about one proxy that does not say which."""

    def __init__(self) -> None:
        super().__init__("You must provide a proxyID in the query string")


class ProxyNotConnected(PilotError):
    """No proxy connected to this pilot has that id (it may be on another replica)."""

    def __init__(self) -> None:
        super().__init__("Proxy not connected to this Pilot instance. It may be connected to another instance.")


class AmbiguousProxy(PilotError):
    """A pod name that names several connected proxies (one per namespace)."""

    def __init__(self, proxy_id: str, matches: list[str]) -> None:
        super().__init__(f"{proxy_id!r} names several connected proxies: {', '.join(matches)}")


class BodyTooLarge(PilotError):
    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"request body over {limit_bytes} bytes")


class UnknownAction(PilotError):
    def __init__(self, action: str, known: tuple[str, ...]) -> None:
        super().__init__(f"action {action!r} is not one of {', '.join(known)}")


class InvalidProposal(PilotError):
    """A dry run's proposed config does not validate; nothing was compared.  `detail`
    carries each error with its resource, field and reason."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("the proposed config is not valid; nothing was compared")
        self.detail: dict[str, Any] = {"message": str(self), "errors": errors}
