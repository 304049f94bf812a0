"""Envoy's gRPC access log service (`envoy.service.accesslog.v3`): each proxy streams its
entries here; each entry becomes one report counted in Istio's metrics and, if asked for,
one access log line.  The stream's first message names the proxy (its node); entries are
counted as they arrive, once, and a broken stream loses only what Envoy had not sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import grpc
import structlog
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc
from prometheus_client import CollectorRegistry, Counter

from libs.config.directory import Directory
from services.telemetry.access_log import AccessLogWriter
from services.telemetry.metrics import MetricStore
from services.telemetry.overrides import OverrideIndex
from services.telemetry.reports import Report, Reporter, http_report, tcp_report

log = structlog.get_logger(__name__)


class AccessLogService(als_pb2_grpc.AccessLogServiceServicer):
    def __init__(self, store: MetricStore, directory: Callable[[], Directory], writer: AccessLogWriter | None,
                 registry: CollectorRegistry, overrides: Callable[[], OverrideIndex] = OverrideIndex) -> None:
        self._store = store
        self._directory = directory
        self._overrides = overrides
        self._writer = writer
        self.streams = 0
        entries = Counter("telemetry_access_log_entries", "Access log entries received, by kind and outcome",
                          ["kind", "outcome"], registry=registry)
        self._entries = {(kind, outcome): entries.labels(kind, outcome)
                         for kind in ("http", "tcp") for outcome in ("counted", "skipped")}

    async def StreamAccessLogs(self, request_iterator: AsyncIterator[als_pb2.StreamAccessLogsMessage],
                               context: grpc.aio.ServicerContext) -> als_pb2.StreamAccessLogsResponse:
        reporter: Reporter | None = None
        self.streams += 1
        try:
            async for message in request_iterator:
                if message.HasField("identifier"):
                    reporter = Reporter.from_node(message.identifier.node)
                if reporter is None:
                    # Envoy always names itself first; a client that does not is not a proxy.
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message must carry identifier")
                    raise AssertionError("unreachable")  # abort raises
                self._record(message, reporter)
        finally:
            self.streams -= 1
        return als_pb2.StreamAccessLogsResponse()

    def _record(self, message: als_pb2.StreamAccessLogsMessage, reporter: Reporter) -> None:
        # Per entry only what each needs: a message carries dozens of them.
        directory = self._directory()
        overrides = self._overrides().for_workload(reporter.workload)
        writer = self._writer
        kinds: tuple[tuple[str, Sequence[Any], Callable[..., Report | None], Callable[..., None],
                           Callable[[Any], None] | None], ...] = (
            ("http", message.http_logs.log_entry, http_report, self._store.add_http,
             writer.http if writer is not None else None),
            ("tcp", message.tcp_logs.log_entry, tcp_report, self._store.add_tcp,
             writer.tcp if writer is not None else None))
        for kind, entries, report_of, add, write in kinds:
            if not entries:
                continue
            counted = 0
            for entry in entries:
                report = report_of(entry, reporter, directory)
                if report is None:
                    continue
                add(report, overrides)
                counted += 1
                if write is not None:
                    write(entry)
            if counted:
                self._entries[kind, "counted"].inc(counted)
            if len(entries) > counted:
                self._entries[kind, "skipped"].inc(len(entries) - counted)
