"""A Debian bookworm base image built here, for machines that reach no image registry.

`debootstrap --variant=minbase` from the Debian mirror apt already uses, with the few
packages Mizzen's image needs, trimmed as Debian's slim images are (no apt lists, docs,
man pages or locales), then `docker import`.  The result is keyed by a hash of its
recipe: the image `mizzen-base:bookworm-<hash>` and its root filesystem
`<cache>/debian-bookworm-<hash>.tar`, so a later build (or a new Docker daemon) reuses it
instead of running debootstrap again (~40 s).  Building it needs root (debootstrap).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from tools.containers.engine import ContainerError, Engine, run

SUITE = "bookworm"
VARIANT = "minbase"
# python3 (3.11 in bookworm) and python3-venv build the virtualenv; iptables is for the
# istio-init container; ca-certificates for Envoy's TLS origination to the world.
PACKAGES = ("python3", "python3-venv", "iptables", "ca-certificates")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# What debootstrap leaves that an image does not need.
TRIM = ("var/cache/apt/archives", "var/cache/apt/pkgcache.bin", "var/cache/apt/srcpkgcache.bin", "var/lib/apt/lists",
        "var/log", "usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale")
# Later apt installs into the image skip the same, as Debian's slim images do.
DPKG_EXCLUDES = ("path-exclude /usr/share/doc/*", "path-include /usr/share/doc/*/copyright",
                 "path-exclude /usr/share/man/*", "path-exclude /usr/share/info/*",
                 "path-exclude /usr/share/locale/*")
# Bumped when the steps below change what the image holds.
RECIPE_VERSION = 1
REPOSITORY = "mizzen-base"


class BaseUnavailable(ContainerError):
    """No base image can be had here: no registry for python:3.11-slim, and no debootstrap
    (or no root) to build the Debian one."""


def debian_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The mirror apt uses for the main archive (deb822 `.sources` or one-line `.list`)."""
    candidates: list[Path] = []
    if (apt_dir / "sources.list.d").is_dir():
        candidates += sorted((apt_dir / "sources.list.d").glob("*.sources"))
        candidates += sorted((apt_dir / "sources.list.d").glob("*.list"))
    candidates.append(apt_dir / "sources.list")
    for path in candidates:
        try:
            text = path.read_text()
        except OSError:
            continue
        found = mirror_in(text, deb822=path.suffix == ".sources")
        if found:
            return found
    return DEFAULT_MIRROR


def mirror_in(text: str, *, deb822: bool) -> str | None:
    """The first URI serving the main Debian archive (not security) in one sources file."""
    if deb822:
        for stanza in re.split(r"\n\s*\n", text):
            fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.MULTILINE))
            uris, suites = fields.get("URIs", "").split(), fields.get("Suites", "").split()
            enabled = fields.get("Enabled", "yes").strip().lower() != "no"
            if enabled and "deb" in fields.get("Types", "").split() and SUITE in suites and uris:
                return uris[0].rstrip("/")
        return None
    for line in text.splitlines():
        parts = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
        if len(parts) >= 3 and parts[0] == "deb" and parts[2] == SUITE:
            return parts[1].rstrip("/")
    return None


def recipe(mirror: str) -> dict[str, object]:
    return {"suite": SUITE, "variant": VARIANT, "packages": list(PACKAGES), "mirror": mirror, "trim": list(TRIM),
            "dpkg_excludes": list(DPKG_EXCLUDES), "version": RECIPE_VERSION}


def recipe_hash(mirror: str) -> str:
    return hashlib.sha256(json.dumps(recipe(mirror), sort_keys=True).encode()).hexdigest()[:16]


def base_tag(mirror: str) -> str:
    return f"{REPOSITORY}:{SUITE}-{recipe_hash(mirror)}"


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """One builder at a time per cache directory (a test run and `make images` may overlap)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_debian_base(engine: Engine, cache_dir: Path, *, mirror: str | None = None,
                       say: Callable[[str], None] = print) -> str:
    """The base image's tag, imported from the cached root filesystem or built first."""
    mirror = mirror or debian_mirror()
    tag = base_tag(mirror)
    if engine.image_id(tag):
        return tag
    with locked(cache_dir / "base.lock"):
        if engine.image_id(tag):
            return tag
        tarball = cache_dir / f"debian-{SUITE}-{recipe_hash(mirror)}.tar"
        if not tarball.is_file():
            _debootstrap(cache_dir, tarball, mirror, say)
        say(f"importing {tarball.name} as {tag}")
        engine("import", "--change", 'CMD ["/bin/bash"]', "--change", "ENV LANG=C.UTF-8",
               "--message", f"debootstrap --variant={VARIANT} {SUITE} {mirror} + {' '.join(PACKAGES)}",
               str(tarball), tag)
    return tag


def _debootstrap(cache_dir: Path, tarball: Path, mirror: str, say: Callable[[str], None]) -> None:
    debootstrap = shutil.which("debootstrap") or ("/usr/sbin/debootstrap" if os.access("/usr/sbin/debootstrap", os.X_OK)
                                                 else None)
    if debootstrap is None:
        raise BaseUnavailable("no registry answered for python:3.11-slim, and debootstrap is not installed to build a "
                             "Debian base here (Debian package debootstrap)")
    if os.geteuid() != 0:
        raise BaseUnavailable("no registry answered for python:3.11-slim, and building a Debian base with debootstrap "
                             "needs root: run `sudo make images` once (the base is cached), or make python:3.11-slim "
                             "available (`docker pull python:3.11-slim`, or `docker load`)")
    rootfs = cache_dir / f"rootfs-{tarball.stem}.tmp"
    shutil.rmtree(rootfs, ignore_errors=True)
    say(f"building a Debian {SUITE} base with debootstrap from {mirror} (about a minute; cached afterwards)")
    try:
        run([debootstrap, f"--variant={VARIANT}", f"--include={','.join(PACKAGES)}", SUITE, str(rootfs), mirror],
            timeout=1200)
        trim(rootfs)
        partial = tarball.with_suffix(".tar.tmp")
        run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."], timeout=600)
        partial.replace(tarball)
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)


def trim(rootfs: Path) -> None:
    """Delete the files under each TRIM path; directories stay, as apt and dpkg expect them."""
    for relative in TRIM:
        target = rootfs / relative
        if target.is_dir():
            for directory, _, files in os.walk(target):
                for name in files:
                    (Path(directory) / name).unlink()
        elif target.exists() or target.is_symlink():
            target.unlink()
    (rootfs / "etc" / "dpkg" / "dpkg.cfg.d" / "mizzen-slim").write_text("\n".join(DPKG_EXCLUDES) + "\n")
    # The build machine's name and resolver mean nothing in a container (Docker writes its own).
    for name in ("etc/hostname", "etc/resolv.conf"):
        (rootfs / name).unlink(missing_ok=True)
