"""The config directory's reader: a file rewritten in place is read only once it holds
still, so the moment a writer has truncated it never deletes what it held."""

from __future__ import annotations

from pathlib import Path

from services.galley.sources.files import FileSource

ROUTE = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: demo, namespace: demo}}
spec:
  hosts: [demo.example.com]
  http:
  - route: [{{destination: {{host: {host}}}}}]
"""


def _hosts(source: FileSource) -> list[str]:
    return [resource.spec["http"][0]["route"][0]["destination"]["host"]
            for _, resource in source.resources().values()]


def _source(tmp_path: Path, text: str) -> tuple[FileSource, Path]:
    path = tmp_path / "route.yaml"
    path.write_text(text)
    source = FileSource(tmp_path)
    assert source.scan() is True
    return source, path


def test_the_first_scan_reads_at_once(tmp_path: Path) -> None:
    source, _ = _source(tmp_path, ROUTE.format(host="a.demo"))
    assert source.synced
    assert _hosts(source) == ["a.demo"]


def test_a_truncated_file_keeps_its_resources_until_it_holds_still(tmp_path: Path) -> None:
    source, path = _source(tmp_path, ROUTE.format(host="a.demo"))
    path.write_text("")
    assert source.scan() is False
    assert _hosts(source) == ["a.demo"]
    # Still empty a poll later: the user emptied it, and its resources go.
    assert source.scan() is True
    assert _hosts(source) == []


def test_a_rewrite_finished_between_scans_is_read_whole(tmp_path: Path) -> None:
    source, path = _source(tmp_path, ROUTE.format(host="a.demo"))
    path.write_text("")
    assert source.scan() is False
    path.write_text(ROUTE.format(host="b.demo"))
    assert source.scan() is False
    assert _hosts(source) == ["a.demo"]
    assert source.scan() is True
    assert _hosts(source) == ["b.demo"]


def test_a_removed_file_goes_at_once(tmp_path: Path) -> None:
    source, path = _source(tmp_path, ROUTE.format(host="a.demo"))
    path.unlink()
    assert source.scan() is True
    assert _hosts(source) == []
