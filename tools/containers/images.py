"""`make images`: Mizzen's image and the Bookinfo image, tagged by a hash of what went in.

The build context is staged under the cache directory: `deploy/docker/`'s files,
`wheels/mizzen` with Mizzen built from this repository, and `wheels/deps` with every
dependency at its pin in constraints.txt (binary wheels for CPython 3.11 on glibc x86_64,
fetched by the host's pip once and kept in `<cache>/wheels-<key>/`), so the Docker build
needs no network and no compiler.  The base is `python:3.11-slim` where a registry
answers, else a Debian base built here (`tools.containers.base`).

Tags: `mizzen:<hash>` and `mizzen-bookinfo:<hash>`, where the hash covers the base image,
the Dockerfiles, pyproject.toml, constraints.txt and every file of the packages; an image
already built for a hash is reused, and `:latest` points at the newest build.  The
dependencies' stage is kept as `mizzen-deps:<key>`, so a change to Mizzen's code rebuilds
only Mizzen's own layer.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tools.containers import base
from tools.containers import wheels as wheels_
from tools.containers.engine import ContainerError, Engine, run

REPO = Path(__file__).resolve().parents[2]
DOCKER_DIR = REPO / "deploy" / "docker"
# The user's cache, not the checkout's: the Debian base and the dependency wheels (keyed by
# what decides them) serve every clone, so a fresh clone's first build fetches nothing.
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mizzen" / "images"
SLIM = "python:3.11-slim"
MIZZEN = "mizzen"
BOOKINFO = "mizzen-bookinfo"
# The dependencies' stage, tagged by what decides it (dependency_key): Docker's build cache.
DEPS = "mizzen-deps"
# Labels: which content an image holds, and which checkout built it (older builds of the
# same checkout are removed after a new one; other checkouts' images are left alone).
HASH_LABEL = "io.mizzen.content-hash"
SOURCE_LABEL = "io.mizzen.source"
BUILD_STAGE_LABEL = "io.mizzen.build-stage"
PACKAGES = ("libs", "services", "tools", "samples")
PROJECT_FILES = ("pyproject.toml", "README.md")
# The image's Python (the base's python3): wheels are fetched for it, whatever Python runs this.
ABI = "cp311"
# bookworm's glibc is 2.36: any manylinux wheel up to it runs on both bases.
GLIBC = ("2_5", "2_12", "2_17", "2_24", "2_27", "2_28", "2_31", "2_34", "2_35", "2_36")
BASES = ("auto", "debian", "python-slim")


@dataclass(frozen=True)
class Images:
    mizzen: str
    bookinfo: str
    base: str
    content_hash: str


def choose_base(engine: Engine, cache_dir: Path, want: str = "auto", *, say: Callable[[str], None] = print) -> str:
    """`python-slim`: python:3.11-slim (pulled if missing); `debian`: the local Debian base;
    `auto`: python:3.11-slim if present or pullable, else the Debian base."""
    if want not in BASES:
        raise ContainerError(f"base {want!r} is not one of {', '.join(BASES)}")
    if want in ("auto", "python-slim"):
        if engine.image_id(SLIM):
            return SLIM
        pulled = engine("pull", "--quiet", SLIM, check=False, timeout=300)
        if pulled.returncode == 0:
            return SLIM
        if want == "python-slim":
            raise ContainerError(f"cannot pull {SLIM}: {pulled.stdout.strip()}")
        reason = (pulled.stdout.strip().splitlines() or ["no output"])[-1]
        say(f"no registry answered for {SLIM} ({reason}); using a Debian base built here")
    return base.ensure_debian_base(engine, cache_dir, say=say)


def _source_files(repo: Path) -> Iterator[Path]:
    for name in PROJECT_FILES:
        yield repo / name
    for package in PACKAGES:
        for directory, dirs, files in os.walk(repo / package):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if not name.endswith((".pyc", ".pyo")):
                    yield Path(directory) / name


def _docker_files() -> list[Path]:
    return sorted(p for p in DOCKER_DIR.iterdir() if p.is_file())


def content_hash(repo: Path, base_id: str) -> str:
    """What the images are made of: base, build files, pins and every file of the packages."""
    digest = hashlib.sha256(f"base {base_id}\n".encode())
    for path in [*_docker_files(), repo / "constraints.txt", *_source_files(repo)]:
        digest.update(f"{path.relative_to(repo)}\n".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def _stage_sources(repo: Path, target: Path) -> None:
    """A clean copy of what the Mizzen wheel is built from (no build/ left by an earlier build)."""
    for path in _source_files(repo):
        destination = target / path.relative_to(repo)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)


def _platforms() -> list[str]:
    tags = [f"manylinux_{glibc}_x86_64" for glibc in GLIBC]
    return [arg for tag in [*tags, "manylinux1_x86_64", "manylinux2010_x86_64", "manylinux2014_x86_64"]
            for arg in ("--platform", tag)]


def dependency_key(mizzen_wheel: Path, constraints: Path, environment: dict[str, str]) -> str:
    """What decides the dependency wheels: the pins, Mizzen's requirements and the image's Python."""
    digest = hashlib.sha256(constraints.read_bytes())
    digest.update("\n".join(wheels_.requires(mizzen_wheel)).encode())
    digest.update(json.dumps(environment, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def dependency_wheels(cache_dir: Path, mizzen_wheel: Path, constraints: Path, environment: dict[str, str],
                      say: Callable[[str], None] = print) -> Path:
    """Every dependency of Mizzen as binary wheels for the image's Python, in
    `<cache>/wheels-<key>/`: fetched by pip once per key, then reused without the network."""
    key = dependency_key(mizzen_wheel, constraints, environment)
    target = cache_dir / f"wheels-{key}"
    complete = target / ".complete"
    if complete.is_file():
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    say("fetching the dependencies' wheels, pinned by constraints.txt (cached afterwards)")
    # Mizzen's wheel is the closure's root for pip and for the marker check; it leaves after.
    root = target / mizzen_wheel.name
    shutil.copy2(mizzen_wheel, root)
    download = wheels_.pip_download(sys.executable, target, constraints, environment["python_full_version"],
                                    _platforms(), ABI)
    download([str(root)])
    wheels_.complete(target, "mizzen", environment, download)
    root.unlink()
    complete.touch()
    for older in cache_dir.glob("wheels-*"):
        if older != target:
            shutil.rmtree(older, ignore_errors=True)
    return target


def _build_isolation() -> list[str]:
    """Without build isolation when this Python has the build backend pyproject.toml names
    (make's .venv does): pip would otherwise fetch setuptools into a fresh env every time."""
    found = run([sys.executable, "-c", "import setuptools, wheel; print(setuptools.__version__)"], check=False)
    major = found.stdout.strip().split(".")[0]
    return ["--no-build-isolation"] if found.returncode == 0 and major.isdigit() and int(major) >= 68 else []


def stage_context(repo: Path, context: Path, cache_dir: Path, environment: dict[str, str],
                  say: Callable[[str], None] = print) -> str:
    """The Docker build context: deploy/docker's files, wheels/mizzen (Mizzen's wheel, built
    from the repository) and wheels/deps (its pinned dependencies); the dependencies' key."""
    shutil.rmtree(context, ignore_errors=True)
    own = context / "wheels" / "mizzen"
    own.mkdir(parents=True)
    for path in _docker_files():
        shutil.copy2(path, context / path.name)
    _stage_sources(repo, context / "src")
    say("building Mizzen's wheel")
    run([sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel", "--quiet", "--no-deps",
         *_build_isolation(), "--wheel-dir", str(own), str(context / "src")], timeout=600)
    shutil.rmtree(context / "src")
    built = sorted(own.glob("mizzen-*.whl"))
    if len(built) != 1:
        raise ContainerError(f"expected one Mizzen wheel in {own}, found {[p.name for p in built]}")
    constraints = repo / "constraints.txt"
    deps = dependency_wheels(cache_dir, built[0], constraints, environment, say)
    staged = context / "wheels" / "deps"
    staged.mkdir()
    for wheel in deps.glob("*.whl"):
        # Hard links: the context is beside the cache, and Docker only reads it.
        try:
            os.link(wheel, staged / wheel.name)
        except OSError:
            shutil.copy2(wheel, staged / wheel.name)
    return dependency_key(built[0], constraints, environment)


def build(repo: Path = REPO, cache_dir: Path = DEFAULT_CACHE, *, base_choice: str = "auto", engine: Engine,
          say: Callable[[str], None] = print, tag_latest: bool = True) -> Images:
    """Build (or find already built) the Mizzen and Bookinfo images for this checkout; with
    `tag_latest`, `:latest` moves to them."""
    base_ref = choose_base(engine, cache_dir, base_choice, say=say)
    base_id = engine.image_id(base_ref)
    if base_id is None:
        raise ContainerError(f"base image {base_ref} vanished while building")
    digest = content_hash(repo, base_id)
    images = Images(f"{MIZZEN}:{digest}", f"{BOOKINFO}:{digest}", base_ref, digest)
    with base.locked(cache_dir / "build.lock"):
        if not (engine.image_id(images.mizzen) and engine.image_id(images.bookinfo)):
            _build(repo, cache_dir, images, engine, say)
        else:
            say(f"{images.mizzen} and {images.bookinfo} are up to date")
        if tag_latest:
            engine("tag", images.mizzen, f"{MIZZEN}:latest")
            engine("tag", images.bookinfo, f"{BOOKINFO}:latest")
        _remove_older_builds(engine, repo, digest)
    return images


def _build(repo: Path, cache_dir: Path, images: Images, engine: Engine, say: Callable[[str], None]) -> None:
    context = cache_dir / f"context-{images.content_hash}"
    deps_key = stage_context(repo, context, cache_dir, wheels_.base_environment(engine, images.base), say)
    deps = f"{DEPS}:{deps_key}"
    dockerfile = ["--build-arg", f"BASE_IMAGE={images.base}", "--build-arg", f"MIZZEN_SOURCE={repo}",
                  "--file", str(context / "Dockerfile")]
    labels = ["--label", f"{HASH_LABEL}={images.content_hash}", "--label", f"{SOURCE_LABEL}={repo}"]
    try:
        # The dependencies' stage, tagged: later builds find it in Docker's cache and
        # rebuild only Mizzen's layer, as long as the pins stay.
        if engine.image_id(deps) is None:
            say(f"building {deps}: the dependencies' virtualenv, kept for later builds")
        engine("build", *dockerfile, "--target", "deps", "--tag", deps, str(context), timeout=1800)
        say(f"building {images.mizzen} from {images.base}")
        engine("build", *dockerfile, *labels, "--tag", images.mizzen, str(context), timeout=1800)
        say(f"building {images.bookinfo}")
        engine("build", "--build-arg", f"MIZZEN_IMAGE={images.mizzen}", *labels, "--tag", images.bookinfo,
               "-", input=(context / "Dockerfile.bookinfo").read_text(), timeout=600)
    finally:
        shutil.rmtree(context, ignore_errors=True)
        # Mizzen's build stage (labelled in the Dockerfile) stays behind untagged: not needed again.
        engine("image", "prune", "--force", "--filter", f"label={BUILD_STAGE_LABEL}=app",
               "--filter", f"label={SOURCE_LABEL}={repo}", check=False)
    older = [ref for ref in engine("image", "ls", DEPS, "--filter", f"label={SOURCE_LABEL}={repo}", "--format",
                                   "{{.Repository}}:{{.Tag}}").stdout.split() if ref != deps]
    if older:
        engine("image", "rm", *older, check=False)


def _remove_older_builds(engine: Engine, repo: Path, keep: str) -> None:
    listed = engine("image", "ls", "--filter", f"label={SOURCE_LABEL}={repo}", "--format",
                    "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
    older = [ref for ref in listed if ref.split(":")[0] in (MIZZEN, BOOKINFO)
             and ref.split(":")[-1] not in (keep, "latest", "<none>")]
    if older:
        # An image a container still uses stays: that is the daemon's refusal, not an error here.
        engine("image", "rm", *older, check=False)


def image_size(engine: Engine, ref: str) -> int:
    """Bytes the image takes (all its layers, base included)."""
    return int(engine("image", "inspect", "--format", "{{.Size}}", ref).stdout.strip())

