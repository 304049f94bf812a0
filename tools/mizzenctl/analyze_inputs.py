"""Where `mizzenctl analyze` reads: files (Istio config and Kubernetes manifests), the live
mesh's config from galley's API and its services and workloads from pilot's
`/debug/platformz`, or the files overlaid on the live mesh."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from libs.analysis import Inputs, Platform, from_pilot, input_kinds
from libs.analysis.files import FileInputs, overlay, read_files
from libs.config import Resource
from tools.mizzenctl.galley_client import GalleyUnreachable, request
from tools.mizzenctl.inputs import iter_inputs
from tools.mizzenctl.sources import SourceError, get_json, pilot_urls


class AnalyzeInputError(Exception):
    """What to analyse could not be read; the message says what and how to go on."""


@dataclass
class Gathered:
    inputs: Inputs
    # Resource refs read from files: their messages are shown whatever the namespace.
    from_files: set[str] = field(default_factory=set)
    # What the analysis had to do without, for the user to know.
    notes: list[str] = field(default_factory=list)


def read(args: argparse.Namespace, namespace: str) -> FileInputs:
    found = read_files(iter_inputs(args.files), default_namespace=namespace)
    if found.errors:
        raise AnalyzeInputError("\n".join(found.errors))
    return found


def live_config(args: argparse.Namespace) -> list[Resource]:
    """Every resource of the kinds the analyzers read, in every namespace, from galley."""
    resources: list[Resource] = []
    for kind in input_kinds():
        response = request(args, "GET", "/apis/v1/resources", params={"kind": kind})
        if response.status_code == 404:
            continue  # a galley that does not serve this kind holds none of it
        if response.status_code != 200:
            raise AnalyzeInputError(f"galley answered {response.status_code} listing {kind}: {response.text.strip()}")
        resources.extend(Resource.from_dict(item) for item in response.json()["items"])
    return resources


def live_platform(args: argparse.Namespace) -> tuple[Platform | None, str]:
    """The registry's services and workloads from the first pilot that answers; None (and
    why) when none does."""
    problems: list[str] = []
    for url in pilot_urls(args):
        try:
            return from_pilot(get_json(url, "/debug/platformz", what="pilot")), ""
        except SourceError as exc:
            problems.append(str(exc))
    return None, "; ".join(problems)


def gather(args: argparse.Namespace, namespace: str) -> Gathered:
    files = read(args, namespace) if args.files else FileInputs()
    origins = dict(files.origins)
    from_files = {r.ref for r in files.resources} | {f"{i.kind} {i.namespace}/{i.name}" for i in files.invalid}
    if not args.use_mesh:
        inputs = Inputs(files.resources, files.platform, origins, files.invalid)
        return Gathered(inputs, from_files)
    try:
        live = live_config(args)
    except GalleyUnreachable as exc:
        raise AnalyzeInputError(f"{exc}\n(to analyse files alone, without a running mesh: --use-mesh=false)") \
            from exc
    platform, problem = live_platform(args)
    notes = []
    if platform is None:
        notes.append(f"pilot could not be read ({problem}): the checks that need the registry's services and "
                     "workloads were skipped")
    else:
        platform = platform.merged(files.platform)
    return Gathered(Inputs(overlay(live, files.resources), platform, origins, files.invalid), from_files, notes)
