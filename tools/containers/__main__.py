"""`python -m tools.containers images | compose | identities | pilot-front`: see tools/containers/__init__.py."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _images(argv: Sequence[str]) -> int:
    # Imported here: the image runs `identities` and lacks the build-time packages (packaging).
    from tools.containers import images
    from tools.containers.engine import ContainerError, find_engine

    parser = argparse.ArgumentParser(prog="python -m tools.containers images",
                                     description="Build Mizzen's image and the Bookinfo image (make images).")
    parser.add_argument("--base", choices=images.BASES, default="auto",
                        help="python-slim: FROM python:3.11-slim (pulled); debian: FROM a Debian base built here "
                             "with debootstrap; auto (default): python-slim when a registry answers")
    parser.add_argument("--cache-dir", type=Path, default=images.DEFAULT_CACHE,
                        help="where the Debian base, the dependency wheels and build locks live "
                             "(default ~/.cache/mizzen/images)")
    args = parser.parse_args(argv)
    try:
        engine = find_engine()
        built = images.build(cache_dir=args.cache_dir, base_choice=args.base, engine=engine)
        for ref in (built.mizzen, built.bookinfo):
            print(f"{ref}  {images.image_size(engine, ref) / 1e6:.0f} MB  (also {ref.split(':')[0]}:latest)")
    except ContainerError as exc:
        print(f"make images: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["images"]:
        return _images(args[1:])
    if args[:1] == ["compose"]:
        from tools.containers import compose
        from tools.containers.engine import ContainerError, find_engine

        try:
            return compose.main(args[1:], find_engine)
        except ContainerError as exc:
            print(f"compose: {exc}", file=sys.stderr)
            return 1
    if args[:1] == ["identities"]:
        from tools.containers.identities import main as identities

        return identities(args[1:])
    if args[:1] == ["pilot-front"]:
        from tools.containers.pilot_front import main as pilot_front

        return pilot_front(args[1:])
    print("usage: python -m tools.containers images [--base auto|debian|python-slim] | compose up|down|context "
          "[...] | identities [...] | pilot-front [...]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
