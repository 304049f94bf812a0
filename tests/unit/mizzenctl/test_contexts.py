"""mizzenctl's contexts: which mesh a command talks to when run from any directory."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tools.mizzenctl import contexts
from tools.mizzenctl.cli import main


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return {"MIZZEN_CONFIG_HOME": str(tmp_path / "config")}


def test_up_records_the_mesh_and_makes_it_current(tmp_path: Path, environ: dict[str, str]) -> None:
    first = contexts.record_local(tmp_path / "demo" / ".mizzen", environ)
    second = contexts.record_local(tmp_path / "meshes" / "staging", environ)
    assert (first, second) == ("demo", "staging")
    assert contexts.current(environ) == contexts.Context("staging", state_dir=str(tmp_path / "meshes" / "staging"))
    # The same state dir again keeps its name; another of the same name gets a suffix.
    assert contexts.record_local(tmp_path / "demo" / ".mizzen", environ) == "demo"
    assert contexts.record_local(tmp_path / "other" / "demo", environ) == "demo-2"


def test_the_state_dir_comes_from_the_environment_then_the_context_then_here(tmp_path: Path,
                                                                             environ: dict[str, str]) -> None:
    assert contexts.default_state_dir(environ) == ".mizzen"
    contexts.record_local(tmp_path / "demo", environ)
    assert contexts.default_state_dir(environ) == str(tmp_path / "demo")
    assert contexts.default_state_dir({**environ, "MIZZEN_STATE_DIR": "/elsewhere"}) == "/elsewhere"


def test_errors_say_which_mesh_was_tried_and_how_to_choose(tmp_path: Path, environ: dict[str, str]) -> None:
    contexts.record_local(tmp_path / "demo", environ)
    explained = contexts.explain(argparse.Namespace(state_dir=str(tmp_path / "demo"), galley=None), environ)
    assert f"tried context 'demo' (state dir {tmp_path / 'demo'})" in explained
    assert "mizzenctl context use NAME" in explained and "MIZZEN_STATE_DIR" in explained
    explained = contexts.explain(argparse.Namespace(state_dir=str(tmp_path / "x"), galley=None), environ)
    assert f"tried the local mesh of {tmp_path / 'x'}" in explained


def test_context_commands_list_add_use_delete(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIZZEN_CONFIG_HOME", str(tmp_path / "config"))
    assert main(["context"]) == 0
    assert "no contexts yet" in capsys.readouterr().out
    assert main(["context", "add", "compose", "--galley", "http://127.0.0.1:15019", "--pilot",
                 "http://127.0.0.1:15014"]) == 0
    assert main(["context", "add", "demo", "--state-dir", str(tmp_path / "demo")]) == 0
    capsys.readouterr()
    assert main(["context", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["*", "compose", "http://127.0.0.1:15019"]
    assert lines[2].split() == ["demo", str(tmp_path / "demo")]
    assert main(["context", "use", "demo"]) == 0
    assert contexts.current().name == "demo"  # type: ignore[union-attr]
    assert main(["context", "use", "nope"]) == 1
    assert "no context 'nope'; known: compose, demo" in capsys.readouterr().err
    assert main(["context", "delete", "demo"]) == 0
    assert contexts.current() is None


def test_a_non_local_context_points_commands_at_its_galley(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MIZZEN_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("MIZZEN_STATE_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    main(["context", "add", "compose", "--galley", "http://127.0.0.1:9", "--use"])
    capsys.readouterr()
    assert main(["get", "virtualservices"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach galley at http://127.0.0.1:9" in err
    assert "tried context 'compose' (galley http://127.0.0.1:9)" in err
