"""`python -m bench [part ...]`: run every benchmark package (or the named ones)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    root = Path(__file__).parent
    known = sorted(m.name for m in pkgutil.iter_modules([str(root)]) if m.ispkg)
    flags = {arg for arg in argv if arg.startswith("-")}
    if flags:
        # Every part runs as recorded, with no options: a mistyped flag must not start a
        # half-hour run that overwrites recorded results.
        print(f"usage: python -m bench [part ...]; parts: {', '.join(known)}", file=sys.stderr)
        return 0 if flags <= {"-h", "--help"} else 2
    unknown = [part for part in argv if part not in known]
    if unknown:
        print(f"no benchmark named {', '.join(unknown)}; parts: {', '.join(known)}", file=sys.stderr)
        return 2
    parts = argv or known
    failed = 0
    for part in parts:
        module = importlib.import_module(f"bench.{part}.__main__" if (root / part / "__main__.py").exists()
                                         else f"bench.{part}")
        print(f"=== bench/{part} ===", flush=True)
        failed += int(module.main() or 0) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
