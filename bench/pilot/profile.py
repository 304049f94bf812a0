"""Where pilot's time goes at the scale benchmark's size: the scale run with pilot under
py-spy, summarised as text (inclusive and self share of samples per function).

    python -m bench.pilot.profile [--changes N] [--out bench/results/pilot-profile.txt]

Needs `py-spy` in the virtualenv (`pip install py-spy`; a profiling aid, not a dependency).
One run per scenario, so each profile shows one kind of work: the initial sync of every
proxy, then VirtualService changes, then endpoint changes (each after its own sync).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import uvloop

from bench.pilot.scale_run import ScaleSetup, run

RESULTS = Path(__file__).resolve().parents[1] / "results" / "pilot-profile.txt"
TOP = 30


class Samples:
    """Per function (name and file): samples with it on the stack (inclusive), and on top
    of it (self)."""

    def __init__(self, speedscope: dict[str, Any]) -> None:
        frames = speedscope["shared"]["frames"]

        def label(index: int) -> str:
            frame = frames[index]
            return f"{frame['name']} ({'/'.join(str(frame.get('file', '')).split('/')[-3:])})"

        self.inclusive: Counter[str] = Counter()
        self.own: Counter[str] = Counter()
        self.total = 0.0
        for profile in speedscope["profiles"]:
            for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
                self.total += weight
                for name in {label(i) for i in stack}:
                    self.inclusive[name] += weight
                if stack:
                    self.own[label(stack[-1])] += weight

    def minus(self, other: Samples) -> Samples:
        """What this run spent beyond `other` (the same run without the changes): roughly,
        the changes alone."""
        out = Samples({"shared": {"frames": []}, "profiles": []})
        out.inclusive = self.inclusive - other.inclusive
        out.own = self.own - other.own
        out.total = max(1.0, self.total - other.total)
        return out

    def text(self, top: int = TOP) -> str:
        lines = [f"seconds sampled: {self.total:.1f}", "", "inclusive:"]
        lines += [f"  {v / self.total * 100:5.1f}%  {k}" for k, v in self.inclusive.most_common(top)]
        lines += ["", "self:"]
        lines += [f"  {v / self.total * 100:5.1f}%  {k}" for k, v in self.own.most_common(top)]
        return "\n".join(lines)


def profile(setup: ScaleSetup, work: Path) -> tuple[dict[str, Any], Samples]:
    out = work / "pilot.speedscope.json"
    results = uvloop.run(run(ScaleSetup(**{**setup.__dict__, "profile": out})))
    return results, Samples(json.loads(out.read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pilot.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--proxies", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if shutil.which("py-spy", path=str(Path(sys.executable).parent)) is None:
        raise SystemExit("py-spy is not installed in this virtualenv: .venv/bin/pip install py-spy")
    base = ScaleSetup(services=args.services, proxies=args.proxies, vs_changes=0, endpoint_changes=0)
    scenarios = {
        "initial sync": base,
        f"{args.changes} VirtualService changes (after the initial sync)": ScaleSetup(
            **{**base.__dict__, "vs_changes": args.changes}),
        f"{args.changes} endpoint changes (after the initial sync)": ScaleSetup(
            **{**base.__dict__, "endpoint_changes": args.changes}),
    }
    sections = [f"pilot profile: {args.services} services, {args.proxies} proxies (python -m bench.pilot.profile)"]
    with tempfile.TemporaryDirectory(prefix="mzb-profile-") as work:
        baseline: Samples | None = None
        for title, setup in scenarios.items():
            results, samples = profile(setup, Path(work))
            sync = results["initial_sync"]["all_acked_s"]
            if baseline is None:
                baseline = samples
            else:
                # The initial sync's own samples taken out, so what is left is the changes'.
                samples = samples.minus(baseline)
            sections.append(f"== {title} (initial sync {sync} s under the profiler)\n{samples.text()}")
    args.out.write_text("\n\n".join(sections) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
