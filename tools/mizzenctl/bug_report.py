"""`mizzenctl bug-report`: one archive (`bug-report.tar.gz`) with what a maintainer asks for
first, as istioctl's bug-report gathers it from a cluster:

    bug-report/
      summary.txt                  what was collected, and what could not be
      version.json                 `mizzenctl version -o json`
      mesh.json                    the local mesh's state file (processes, addresses)
      config/<kind>.yaml           galley's config, every kind Mizzen serves, all namespaces
      pilot/syncz.json, push_status.json, configz.json, registryz.json
      proxies/<pod.ns>/config_dump.json     Envoy's own dump (pilot's view when unreachable)
      proxies/<pod.ns>/pilot_config_dump.json, clusters.json, server_info.json
      logs/<process>.log, logs/proxies/<pod>-envoy.log   the local mesh's logs (their tails)

Secrets never leave: every JSON document goes through redact_json (private keys, SDS
secrets, tokens), every log through redact_text, and the mesh's own credentials (galley's
API token, the workloads' bootstrap tokens) are removed wherever they appear.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from libs.config import supported_kinds
from tools.localmesh.state import MeshState
from tools.mizzenctl import contexts, envoy_admin, version
from tools.mizzenctl.galley_client import GalleyUnreachable, add_connection_flags, request
from tools.mizzenctl.redact import redact_json, redact_text
from tools.mizzenctl.sources import (
    SourceError,
    add_pilot_flags,
    admin_url,
    get_json,
    pilot_config,
    pilot_urls,
)

__all__ = ["Archive", "add_parser", "known_secrets", "tail"]

ROOT = "bug-report"
DEFAULT_MAX_LOG_BYTES = 2 * 1024 * 1024


@dataclass
class Archive:
    """The archive's files, in the order added, and the problems met collecting them."""

    secrets: tuple[str, ...] = ()
    files: dict[str, bytes] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add_json(self, path: str, value: Any) -> None:
        self.files[path] = (json.dumps(redact_json(value, self.secrets), indent=2) + "\n").encode()

    def add_text(self, path: str, text: str) -> None:
        self.files[path] = redact_text(text, self.secrets).encode()

    def write(self, target: Path) -> None:
        now = time.time()
        with tarfile.open(target, "w:gz") as tar:
            for path, data in self.files.items():
                info = tarfile.TarInfo(f"{ROOT}/{path}")
                info.size, info.mtime, info.mode = len(data), int(now), 0o644
                tar.addfile(info, io.BytesIO(data))


def known_secrets(state_dir: Path) -> tuple[str, ...]:
    """The local mesh's own credentials: galley's API token and the workloads' bootstrap
    tokens (JWTs, which redact_text catches anyway)."""
    found = []
    for path in [state_dir / "galley-token", *sorted((state_dir / "tokens").glob("*"))]:
        try:
            value = path.read_text().strip()
        except OSError:
            continue
        if value:
            found.append(value)
    return tuple(found)


def tail(path: Path, max_bytes: int) -> str:
    """The last `max_bytes` of a log, from a line start, saying what was cut."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        if size > max_bytes:
            handle.seek(size - max_bytes)
            data = handle.read()
            data = data[data.find(b"\n") + 1:]
            return f"[... {size - len(data)} earlier bytes not included ...]\n" + data.decode(errors="replace")
        return handle.read().decode(errors="replace")


def _config(args: argparse.Namespace, archive: Archive) -> None:
    for info in supported_kinds():
        try:
            response = request(args, "GET", "/apis/v1/resources", params={"kind": info.kind})
        except GalleyUnreachable as exc:
            archive.problems.append(f"config: {exc}")
            return
        if response.status_code != 200:
            archive.problems.append(f"config: galley answered {response.status_code} for {info.kind}")
            continue
        items = response.json()["items"]
        if items:
            document = {"apiVersion": "v1", "kind": "List", "items": redact_json(items, archive.secrets)}
            archive.files[f"config/{info.kind}.yaml"] = yaml.safe_dump(document, sort_keys=False).encode()


def _pilot(urls: list[str], archive: Archive) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for index, url in enumerate(urls):
        prefix = "pilot" if len(urls) == 1 else f"pilot-{index}"
        for name, path, params in (("syncz", "/debug/syncz", {"warnings": "true"}),
                                   ("push_status", "/debug/push_status", None), ("configz", "/debug/configz", None),
                                   ("registryz", "/debug/registryz", None)):
            try:
                body = get_json(url, path, params, what="pilot")
            except SourceError as exc:
                archive.problems.append(f"{prefix}/{name}: {exc}")
                continue
            archive.add_json(f"{prefix}/{name}.json", body)
            if name == "syncz":
                rows.extend(body.get("proxies", []))
    return rows


def _proxies(urls: list[str], rows: list[dict[str, Any]], archive: Archive) -> None:
    for row in sorted(rows, key=lambda r: str(r.get("name") or r["proxy"])):
        name = str(row.get("name") or row["proxy"])
        folder = f"proxies/{name}"
        try:
            view = pilot_config(urls, row["proxy"], include_eds=True)
            archive.add_json(f"{folder}/pilot_config_dump.json", view.dump)
        except SourceError as exc:
            archive.problems.append(f"{folder}: pilot's view: {exc}")
        try:
            admin = envoy_admin.admin_of(row)
            base = admin_url(admin)
            archive.add_json(f"{folder}/config_dump.json",
                             get_json(base, "/config_dump", {"include_eds": "true"}, what="Envoy admin"))
            archive.add_json(f"{folder}/clusters.json", get_json(base, "/clusters", {"format": "json"},
                                                                 what="Envoy admin"))
            archive.add_json(f"{folder}/server_info.json", envoy_admin.server_info(admin))
        except SourceError as exc:
            archive.problems.append(f"{folder}: Envoy admin: {exc}")


def _logs(state_dir: Path, state: MeshState | None, max_bytes: int, archive: Archive) -> None:
    if state is None:
        archive.problems.append(f"logs: no local mesh runs from {state_dir}; only its APIs were asked")
        return
    logs = sorted({Path(p.log) for p in state.processes if p.log} | set((state_dir / "logs").glob("*.log")))
    logs += sorted((state_dir / "proxies").glob("*/envoy.log"))
    for path in logs:
        name = f"proxies/{path.parent.name}-envoy.log" if path.name == "envoy.log" else path.name
        try:
            archive.add_text(f"logs/{name}", tail(path, max_bytes))
        except OSError as exc:
            archive.problems.append(f"logs/{name}: {exc}")


def _summary(archive: Archive, versions: dict[str, Any]) -> str:
    lines = ["Mizzen bug report", time.strftime("created %Y-%m-%dT%H:%M:%SZ", time.gmtime()), "",
             *version.summarize(versions), "", f"{len(archive.files)} files:"]
    lines += [f"  {path}" for path in archive.files]
    lines += ["", "not collected:" if archive.problems else "everything asked for was collected"]
    lines += [f"  {problem}" for problem in archive.problems]
    return "\n".join(lines) + "\n"


def collect(args: argparse.Namespace) -> Archive:
    state_dir = Path(args.state_dir)
    state = MeshState.read(state_dir)
    archive = Archive(secrets=known_secrets(state_dir))
    versions, problems = version.collect(args)
    archive.problems.extend(f"version: {problem}" for problem in problems)
    archive.add_json("version.json", versions)
    if state is not None:
        archive.add_json("mesh.json", json.loads((state_dir / "mesh.json").read_text()))
    _config(args, archive)
    urls = pilot_urls(args)
    rows = _pilot(urls, archive)
    _proxies(urls, rows, archive)
    _logs(state_dir, state, args.max_log_bytes, archive)
    archive.add_text("summary.txt", _summary(archive, versions))
    return archive


def run(args: argparse.Namespace) -> int:
    archive = collect(args)
    target = Path(args.output)
    archive.write(target)
    print(f"wrote {target} ({len(archive.files)} files, secrets redacted)")
    for problem in archive.problems:
        print(f"warning: not collected: {problem}", file=sys.stderr)
    if not any(path.startswith(("pilot", "config")) for path in archive.files):
        print(f"error: neither galley nor pilot answered; {contexts.explain(args)}", file=sys.stderr)
        return 1
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "bug-report", help="one archive with the mesh's config, every proxy's config, pilot's state and the logs",
        description="Collect what a bug report needs into one tar.gz: galley's config, each proxy's Envoy config "
                    "dump, pilot's syncz, push history, config and registry, the versions and the local mesh's "
                    "logs. Private keys, tokens and other secrets are redacted.")
    parser.add_argument("--output", default="bug-report.tar.gz", metavar="FILE",
                        help="where the archive goes (default: bug-report.tar.gz here)")
    parser.add_argument("--max-log-bytes", type=int, default=DEFAULT_MAX_LOG_BYTES, metavar="N",
                        help=f"keep the last N bytes of each log (default {DEFAULT_MAX_LOG_BYTES})")
    add_connection_flags(parser)
    add_pilot_flags(parser)
    parser.set_defaults(run=run)
