"""`mizzenctl up`, `down` and `status`: the local mesh on this machine."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tools.localmesh.plan import MeshOptions, identities
from tools.localmesh.processes import log_tail
from tools.localmesh.state import MeshState, ProcessState, alive
from tools.mizzenctl import contexts

Row = tuple[str, ...]


def _options(args: argparse.Namespace) -> MeshOptions:
    return MeshOptions(state_dir=Path(args.state_dir).resolve(), app=args.app, ingress_address=args.ingress_address,
                       capture=args.capture, subnet=args.subnet)


def up(args: argparse.Namespace) -> int:
    state_dir = Path(args.state_dir).resolve()
    existing = MeshState.read(state_dir)
    if existing is not None and alive(existing.pid):
        print(f"a mesh is already running from {state_dir} (pid {existing.pid}); `mizzenctl down` stops it",
              file=sys.stderr)
        return 1
    if args.capture == "iptables":
        from tools.localmesh.netns import available

        missing = available()
        if missing:
            print(f"--capture iptables {missing} (network namespaces, iptables, setpriv); use --capture proxy",
                  file=sys.stderr)
            return 1
    name = contexts.record_local(state_dir)
    print(f"context {name!r} is current: mizzenctl finds this mesh from any directory")
    if args.detach:
        return _detach(args, state_dir)
    from tools.localmesh.mesh import run_foreground

    options = _options(args)
    return asyncio.run(run_foreground(options, identities(options)))


def _detach(args: argparse.Namespace, state_dir: Path) -> int:
    (state_dir / "logs").mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "logs" / "mesh.log"
    argv = [sys.executable, "-m", "tools.mizzenctl", "up", "--state-dir", str(state_dir), "--app", args.app,
            "--ingress-address", args.ingress_address, "--capture", args.capture, "--subnet", str(args.subnet)]
    with log_path.open("ab") as output:
        child = subprocess.Popen(argv, stdout=output, stderr=output, stdin=subprocess.DEVNULL, start_new_session=True)
    started = time.monotonic()
    while True:
        state = MeshState.read(state_dir)
        if state is not None and state.pid == child.pid and state.status == "ready":
            break
        if child.poll() is not None:
            print(f"the mesh failed to start (exit {child.returncode}); last lines of {log_path}:", file=sys.stderr)
            print("\n".join(log_path.read_text(errors="replace").splitlines()[-20:]), file=sys.stderr)
            return 1
        if time.monotonic() - started > 180:
            print(f"the mesh did not become ready in 180 s; see {log_path}", file=sys.stderr)
            return 1
        time.sleep(0.1)
    log = log_path.read_text(errors="replace")
    print(log[log.rfind("\nMizzen is up"):], end="")
    print(f"(running in the background as pid {child.pid}; `mizzenctl down --state-dir {args.state_dir}` stops it)")
    return 0


def down(args: argparse.Namespace) -> int:
    state_dir = Path(args.state_dir).resolve()
    state = MeshState.read(state_dir)
    if state is None:
        print(f"no mesh is running from {state_dir}")
        return 0
    if alive(state.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(state.pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while alive(state.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    # Whatever is left (the supervisor was killed, say) goes by process group.
    for process in state.processes:
        if process.pid and alive(process.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
    if alive(state.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(state.pid, signal.SIGKILL)
    if state.capture == "iptables":
        # The supervisor removes its namespaces when it stops; if it was killed, do it here.
        from tools.localmesh.mesh import delete_namespaces

        delete_namespaces(MeshOptions(state_dir=state_dir, app=state.app, capture="iptables", subnet=state.subnet))
    (state_dir / "mesh.json").unlink(missing_ok=True)
    print(f"mesh stopped ({len(state.processes)} processes)")
    return 0


def status(args: argparse.Namespace) -> int:
    state_dir = Path(args.state_dir).resolve()
    state = MeshState.read(state_dir)
    if state is None or not alive(state.pid):
        print(f"no mesh is running from {state_dir}")
        return 1
    print(f"mesh {state.status} (pid {state.pid})   ingress {state.ingress}   galley {state.galley}   "
          f"pilot {state.pilot}")
    if state.telemetry:
        print(f"telemetry: metrics {state.telemetry}/metrics   graph {state.telemetry}/graph   "
              f"traces {state.zipkin}/api/v2/traces")
    if state.policy:
        print(f"policy: checks and quotas {state.policy}/metrics")
    rows: list[Row] = [("PROCESS", "PID", "STATE", "RESTARTS", "LAST EXIT")]
    for process in state.processes:
        rows.append((process.name, str(process.pid or "-"), _process_state(process), str(process.restarts),
                     "-" if process.last_exit is None else str(process.last_exit)))
    _table(rows)
    failing = [p for p in state.processes if p.crash_looping or not alive(p.pid)]
    for process in failing:
        what = "keeps crashing" if process.crash_looping else "is down, waiting to be restarted"
        print(f"\n{process.name} {what} (last exit {process.last_exit}, {process.restarts} restarts); "
              f"last lines of {process.log}:")
        print("\n".join(f"  {line}" for line in log_tail(Path(process.log), LOG_LINES)))
    try:
        syncz = httpx.get(f"{state.pilot}/debug/syncz", timeout=3).json()
    except (httpx.HTTPError, ValueError) as exc:
        print(f"\npilot unreachable: {exc}")
        return 1
    print()
    connected = {p["proxy"].split("~")[2]: p for p in syncz.get("proxies", [])}
    rows = [("PROXY", "CDS", "LDS", "EDS", "RDS")]
    for name in state.proxies:
        entry = connected.get(name)
        if entry is None:
            rows.append((name, "NOT CONNECTED", "", "", ""))
            continue
        cells = []
        for kind in ("CDS", "LDS", "EDS", "RDS"):
            watch = entry["types"].get(kind)
            if watch is None:
                cells.append("NOT SENT")
            elif watch["last_nack"] and watch["last_nack"]["version"] == watch["sent"]:
                cells.append("STALE (NACK)")
            else:
                cells.append("SYNCED" if not watch["awaiting_ack"] and watch["acked"] == watch["sent"] else "STALE")
        rows.append((name, *cells))
    _table(rows)
    return 1 if failing else 0


# Lines of a failing child's log `status` shows.
LOG_LINES = 10


def _process_state(process: ProcessState) -> str:
    if process.crash_looping:
        return "CRASHLOOP"
    return "running" if alive(process.pid) else "DOWN"


def dashboard(args: argparse.Namespace) -> int:
    """The live service graph (Istio 1.0's servicegraph): opened in a browser when there is
    one, else its address printed."""
    state = MeshState.read(Path(args.state_dir).resolve())
    base = args.telemetry or (state.telemetry if state is not None and alive(state.pid) else "")
    if not base:
        print(f"no mesh is running from {Path(args.state_dir).resolve()}; pass --telemetry URL", file=sys.stderr)
        return 1
    url = f"{base.rstrip('/')}/graph"
    print(url)
    # A machine without a screen has no browser to open: the printed address is the answer.
    if not args.no_browser and (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                                or sys.platform == "darwin"):
        import webbrowser

        with contextlib.suppress(webbrowser.Error):
            webbrowser.open(url)
    return 0


def _table(rows: list[Row]) -> None:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for row in rows:
        print("   ".join(cell.ljust(widths[c]) for c, cell in enumerate(row)).rstrip())


def add_parsers(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("up", help="run the local mesh: control plane, Bookinfo, gateways")
    parser.add_argument("--app", choices=("bookinfo", "none"), default="bookinfo")
    parser.add_argument("--state-dir", default=os.environ.get("MIZZEN_STATE_DIR", contexts.LOCAL_DEFAULT),
                        help="where data and logs go (default .mizzen/ here) [env MIZZEN_STATE_DIR]")
    parser.add_argument("--ingress-address", default="127.0.0.1",
                        help="loopback address the ingress gateway listens on (Gateway ports, e.g. 8080)")
    parser.add_argument("--capture", choices=("proxy", "iptables"), default="proxy",
                        help="apps reach their sidecar as an HTTP proxy, or (root) by iptables capture")
    parser.add_argument("-d", "--detach", action="store_true", help="return once every proxy is SYNCED")
    parser.add_argument("--subnet", type=int, default=0, choices=range(256), metavar="N",
                        help="run in 127.N.0.0/16 (control plane 127.N.0.1, workloads 127.N.10.x), so two "
                             "meshes can share a machine (default 0)")
    parser.set_defaults(run=up)
    graph = commands.add_parser("dashboard", help="open the live service graph (prints its URL without a browser)")
    graph.add_argument("--state-dir", default=contexts.default_state_dir(),
                       help="the local mesh's state dir [default: the current context's]")
    graph.add_argument("--telemetry", help="telemetry's URL (default: the local mesh's)")
    graph.add_argument("--no-browser", action="store_true", help="only print the URL")
    graph.set_defaults(run=dashboard)
    for name, func, text in (("down", down, "stop the local mesh"), ("status", status, "processes and proxies")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--state-dir", default=contexts.default_state_dir(),
                         help="the local mesh's state dir [env MIZZEN_STATE_DIR; default: the current context's]")
        sub.set_defaults(run=func)
