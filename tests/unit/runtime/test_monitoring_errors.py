"""A service's errors become HTTP answers at one edge: the monitoring server's handler, from
the status table the service hands it.  Pilot's and galley's tables cover every error of
theirs a request can meet."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter
from prometheus_client import CollectorRegistry

from libs.runtime import MonitoringServer, Readiness
from services.galley.api import HTTP_STATUS as GALLEY_HTTP
from services.galley.errors import GalleyError
from services.pilot.errors import InconsistentConfig, InvalidProposal, PilotError
from services.pilot.server import HTTP_STATUS as PILOT_HTTP
from services.pilot.xds.server import GRPC_STATUS as PILOT_GRPC


class Root(Exception):
    pass


class Refused(Root):
    pass


class Gone(Refused):
    """Not listed: takes its nearest listed base's status."""


class Detailed(Root):
    def __init__(self) -> None:
        super().__init__("summary")
        self.detail = {"message": "summary", "errors": ["a.spec.b: wrong"]}


def server() -> MonitoringServer:
    api = APIRouter()

    @api.get("/refused")
    async def refused() -> None:
        raise Refused("no, because")

    @api.get("/gone")
    async def gone() -> None:
        raise Gone("went away")

    @api.get("/detailed")
    async def detailed() -> None:
        raise Detailed()

    @api.get("/bug")
    async def bug() -> None:
        raise Root("unlisted root")

    return MonitoringServer(host="127.0.0.1", port=0, readiness=Readiness(), registry=CollectorRegistry(),
                            routers=(api,), error_statuses={Refused: 403, Detailed: 422})


@pytest.mark.parametrize(("path", "status", "detail"), [
    ("/refused", 403, "no, because"),
    ("/gone", 403, "went away"),
    ("/detailed", 422, {"message": "summary", "errors": ["a.spec.b: wrong"]}),
])
async def test_each_error_answers_with_its_class_status_and_fastapis_body(path: str, status: int,
                                                                          detail: object) -> None:
    transport = httpx.ASGITransport(app=server().app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pilot") as client:
        answer = await client.get(path)
    assert answer.status_code == status
    assert answer.json() == {"detail": detail}


async def test_an_error_no_table_lists_is_not_turned_into_an_answer() -> None:
    transport = httpx.ASGITransport(app=server().app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://pilot") as client:
        answer = await client.get("/bug")
    assert answer.status_code == 500


def subclasses(root: type[Exception]) -> set[type[Exception]]:
    found = set(root.__subclasses__())
    for cls in list(found):
        found |= subclasses(cls)
    return found


def test_every_pilot_refusal_has_a_status_at_an_edge() -> None:
    # InconsistentConfig is pilot's own bug guard: logged, the proxy keeps what it has.
    refusals = subclasses(PilotError) - {InconsistentConfig}
    unmapped = {cls.__name__ for cls in refusals if cls not in PILOT_HTTP and cls not in PILOT_GRPC}
    assert not unmapped
    assert PILOT_HTTP[InvalidProposal] == 422


def test_every_galley_refusal_has_a_status() -> None:
    assert {cls.__name__ for cls in subclasses(GalleyError) if cls not in GALLEY_HTTP} == set()
