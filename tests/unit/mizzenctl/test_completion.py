"""Shell completion generated from mizzenctl's argparse tree, run in a real bash (and zsh
when installed), and `--help` with an example on every command."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tools.mizzenctl import completion, help_examples
from tools.mizzenctl.cli import build_parser


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("completion") / "mizzenctl.bash"
    path.write_text(completion.bash_script(build_parser()))
    return path


def complete_in_bash(script: Path, *words: str) -> list[str]:
    """What <Tab> offers after `words` (the last one being completed), in a real bash."""
    quoted = " ".join(f"'{w}'" for w in ("mizzenctl", *words))
    program = (f"source {script}\nCOMP_WORDS=({quoted})\nCOMP_CWORD={len(words)}\n"
               "_mizzenctl\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
    result = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], capture_output=True, text=True,
                            timeout=30, check=True)
    return [line for line in result.stdout.splitlines() if line]


def test_the_bash_script_is_valid_bash(bash_script: Path) -> None:
    subprocess.run(["bash", "-n", str(bash_script)], check=True, timeout=30)


@pytest.mark.parametrize(("words", "offered"), [
    (("pro",), ["proxy-config", "proxy-status"]),
    # An alias leads to the same command, whose subcommands are offered.
    (("pc", ""), ["all", "bootstrap", "clusters", "endpoints", "listeners", "log", "routes", "secret"]),
    (("experimental", "des", "po"), ["po", "pod"]),
    # A flag's choices; the root's own flag and its value are skipped on the way.
    (("--log-level", "debug", "proxy-config", "secret", "productpage-v1", "-o", ""), ["table", "json"]),
    (("proxy-config", "log", "productpage-v1", "--l"), ["--level"]),
    (("apply", "--skip"), ["--skip-unsupported"]),
    (("completion", ""), ["bash", "zsh"]),
    (("version", "-o", "y"), ["yaml"]),
])
def test_bash_offers_what_argparse_accepts(bash_script: Path, words: tuple[str, ...], offered: list[str]) -> None:
    assert complete_in_bash(bash_script, *words) == offered


def test_bash_completes_paths_for_file_flags(bash_script: Path) -> None:
    assert complete_in_bash(bash_script, "apply", "-f", str(bash_script)[:-3]) == [str(bash_script)]


def test_the_tree_has_every_command_once_with_its_aliases() -> None:
    root = completion.command_tree(build_parser())
    assert root.names["pc"] == root.names["proxy-config"] == "proxy-config"
    assert "pc" not in root.subcommands
    describe_pod = root.subcommands["x"].subcommands["describe"].subcommands["pod"]
    assert describe_pod.path == ("x", "describe", "pod")
    flags = {flag: option for option in describe_pod.options for flag in option.flags}
    assert flags["--state-dir"].values == (completion.FILES,)
    assert not flags["--help"].takes_value


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (Debian package zsh)")
def test_the_zsh_script_is_valid_zsh_and_finds_commands(tmp_path: Path) -> None:
    script = tmp_path / "_mizzenctl"
    script.write_text(completion.zsh_script(build_parser()))
    subprocess.run(["zsh", "-n", str(script)], check=True, timeout=30)
    program = f"""compdef() {{ : }}
source {script}
__mizzenctl_locate pc secret productpage-v1 -o
print -r -- "$cmdpath|$pending|$(__mizzenctl_values "$cmdpath" "$pending")"
__mizzenctl_locate x describe
__mizzenctl_described "$cmdpath" subcommands
"""
    result = subprocess.run(["zsh", "-f", "-c", program], capture_output=True, text=True, timeout=30, check=True)
    lines = result.stdout.splitlines()
    assert lines[0] == "proxy-config secret|-o|table json"
    # zsh shows each subcommand (aliases too) with its help.
    assert [line.split(":", 1)[0] for line in lines[1:]] == ["po", "pod", "service", "svc"]
    assert lines[3] == "service:a service: its DestinationRule and VirtualService, and the Gateways exposing it"


def test_every_command_has_help_with_an_example() -> None:
    missing = [path or "(mizzenctl)" for path, parser in help_examples.parsers(build_parser())
               if "mizzenctl " not in (parser.epilog or "")]
    assert missing == []


def test_help_keeps_examples_as_written_and_wraps_prose() -> None:
    text = build_parser()._subparsers._group_actions[0].choices["version"].format_help()  # type: ignore[union-attr]
    assert text.endswith("examples:\n  mizzenctl version\n  mizzenctl version -o yaml\n"
                         "  mizzenctl version --no-remote\n")
    assert "Print the version of mizzenctl, of each control-plane service" in text
