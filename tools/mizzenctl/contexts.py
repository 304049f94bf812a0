"""Which mesh mizzenctl talks to, from any directory: contexts, as kubectl has them.

`mizzenctl up` records the local mesh it starts as a context (named after its state
directory) and makes it current; `mizzenctl context` lists the contexts, `context use NAME`
switches, `context add NAME --galley URL ...` records a mesh mizzenctl did not start (the
docker-compose mesh, a Kubernetes deployment), `context delete NAME` forgets one.

Precedence, highest first: flags naming an endpoint (`--galley`, `--pilot`, `--token`),
`--state-dir`, the environment (`MIZZEN_STATE_DIR`, `MIZZEN_GALLEY_URL`, ...), the current
context, and last `.mizzen` in the working directory.  The contexts live in
`$MIZZEN_CONFIG_HOME/contexts.json` (default `$XDG_CONFIG_HOME/mizzen`, else
`~/.config/mizzen`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

LOCAL_DEFAULT = ".mizzen"
FILE = "contexts.json"


@dataclass(frozen=True)
class Context:
    name: str
    # A local mesh: its state directory holds where everything is (mesh.json) and the token.
    state_dir: str = ""
    # Any other mesh: where its APIs answer.
    galley: str = ""
    pilot: str = ""
    token_file: str = ""

    def describe(self) -> str:
        where = f"state dir {self.state_dir}" if self.state_dir else f"galley {self.galley or '(not set)'}"
        return f"context {self.name!r} ({where})"


@dataclass
class Contexts:
    current: str = ""
    contexts: dict[str, Context] = field(default_factory=dict)


def config_home(environ: Mapping[str, str] = os.environ) -> Path:
    if environ.get("MIZZEN_CONFIG_HOME"):
        return Path(environ["MIZZEN_CONFIG_HOME"])
    base = Path(environ["XDG_CONFIG_HOME"]) if environ.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "mizzen"


def load(environ: Mapping[str, str] = os.environ) -> Contexts:
    path = config_home(environ) / FILE
    try:
        body = json.loads(path.read_text())
    except FileNotFoundError:
        return Contexts()
    except (OSError, ValueError) as exc:
        print(f"warning: ignoring {path}: {exc}", file=sys.stderr)
        return Contexts()
    contexts = {name: Context(name=name, **{k: str(v) for k, v in entry.items() if k in Context.__annotations__
                                             and k != "name"})
                for name, entry in (body.get("contexts") or {}).items()}
    return Contexts(str(body.get("current") or ""), contexts)


def save(contexts: Contexts, environ: Mapping[str, str] = os.environ) -> None:
    home = config_home(environ)
    home.mkdir(parents=True, exist_ok=True)
    body = {"current": contexts.current,
            "contexts": {name: {k: v for k, v in asdict(c).items() if v and k != "name"}
                         for name, c in sorted(contexts.contexts.items())}}
    staging = home / f".{FILE}.tmp"
    staging.write_text(json.dumps(body, indent=1) + "\n")
    staging.replace(home / FILE)


def current(environ: Mapping[str, str] = os.environ) -> Context | None:
    contexts = load(environ)
    return contexts.contexts.get(contexts.current)


def record_local(state_dir: Path, environ: Mapping[str, str] = os.environ) -> str:
    """Remember a local mesh started from `state_dir` and make it current; its name."""
    state_dir = state_dir.resolve()
    contexts = load(environ)
    existing = next((c.name for c in contexts.contexts.values() if c.state_dir == str(state_dir)), None)
    name = existing or _unique(contexts, state_dir.parent.name if state_dir.name == LOCAL_DEFAULT else state_dir.name)
    contexts.contexts[name] = Context(name, state_dir=str(state_dir))
    contexts.current = name
    save(contexts, environ)
    return name


def _unique(contexts: Contexts, wanted: str) -> str:
    name, n = wanted or "local", 2
    while name in contexts.contexts:
        name, n = f"{wanted}-{n}", n + 1
    return name


def default_state_dir(environ: Mapping[str, str] = os.environ) -> str:
    """The state dir commands use without `--state-dir`: the environment's, the current
    context's, else `.mizzen` here."""
    if environ.get("MIZZEN_STATE_DIR"):
        return environ["MIZZEN_STATE_DIR"]
    context = current(environ)
    if context is not None and context.state_dir:
        return context.state_dir
    return LOCAL_DEFAULT


def explain(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> str:
    """Which mesh a command tried, and how to pick another: for error messages."""
    state_dir = Path(getattr(args, "state_dir", None) or LOCAL_DEFAULT).resolve()
    context = current(environ)
    if getattr(args, "galley", None) or getattr(args, "pilot", None):
        tried = "the URL given on the command line"
    elif context is not None and (str(state_dir) == context.state_dir
                                  or (not context.state_dir and not (state_dir / "mesh.json").exists())):
        tried = context.describe()
    else:
        tried = f"the local mesh of {state_dir}"
    return (f"tried {tried}; `mizzenctl context` lists the meshes mizzenctl knows, `mizzenctl context use NAME`, "
            "--state-dir or MIZZEN_STATE_DIR picks another")


def _list(args: argparse.Namespace) -> int:
    contexts = load()
    if not contexts.contexts:
        print("no contexts yet: `mizzenctl up` records the mesh it starts, `mizzenctl context add` another")
        return 0
    rows = [("CURRENT", "NAME", "STATE DIR / GALLEY")]
    for name, context in sorted(contexts.contexts.items()):
        rows.append(("*" if name == contexts.current else "", name, context.state_dir or context.galley))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("   ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    return 0


def _use(args: argparse.Namespace) -> int:
    contexts = load()
    if args.name not in contexts.contexts:
        print(f"error: no context {args.name!r}; known: {', '.join(sorted(contexts.contexts)) or 'none'}",
              file=sys.stderr)
        return 1
    contexts.current = args.name
    save(contexts)
    print(f"switched to context {args.name!r}")
    return 0


def _add(args: argparse.Namespace) -> int:
    if not (args.state_dir or args.galley):
        print("error: context add needs --state-dir (a local mesh) or --galley (any other)", file=sys.stderr)
        return 1
    contexts = load()
    contexts.contexts[args.name] = Context(
        args.name, state_dir=str(Path(args.state_dir).resolve()) if args.state_dir else "", galley=args.galley or "",
        pilot=args.pilot or "", token_file=str(Path(args.token_file).resolve()) if args.token_file else "")
    if args.use or not contexts.current:
        contexts.current = args.name
    save(contexts)
    print(f"context {args.name!r} recorded" + (" and current" if contexts.current == args.name else ""))
    return 0


def _delete(args: argparse.Namespace) -> int:
    contexts = load()
    if contexts.contexts.pop(args.name, None) is None:
        print(f"error: no context {args.name!r}", file=sys.stderr)
        return 1
    if contexts.current == args.name:
        contexts.current = ""
    save(contexts)
    print(f"context {args.name!r} deleted")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("context", help="show or switch the mesh mizzenctl talks to",
                                 description="Contexts: the meshes mizzenctl knows and the current one. "
                                             "Example: mizzenctl context use demo")
    parser.set_defaults(run=_list)
    sub = parser.add_subparsers(dest="context_command")
    sub.add_parser("list", help="list the contexts (the default)").set_defaults(run=_list)
    use = sub.add_parser("use", help="make a context current")
    use.add_argument("name")
    use.set_defaults(run=_use)
    add = sub.add_parser("add", help="record a mesh: --state-dir for a local one, --galley (and --pilot, "
                                     "--token-file) for any other")
    add.add_argument("name")
    add.add_argument("--state-dir")
    add.add_argument("--galley", help="galley's API URL")
    add.add_argument("--pilot", help="pilot's monitoring URL")
    add.add_argument("--token-file", help="file holding galley's API token")
    add.add_argument("--use", action="store_true", help="make it current")
    add.set_defaults(run=_add)
    delete = sub.add_parser("delete", help="forget a context")
    delete.add_argument("name")
    delete.set_defaults(run=_delete)
