"""The Istio CRDs in deploy/kubernetes: generated from Mizzen's kind registry and in step
with it, one per kind galley serves, in every version it accepts."""

from __future__ import annotations

from pathlib import Path

import yaml

from libs.config import supported_kinds
from tools import crdgen


def test_the_committed_crds_are_what_the_registry_gives() -> None:
    assert crdgen.OUTPUT.read_text() == crdgen.render(), "deploy/kubernetes/base/crds.yaml is stale: run make crds"
    assert crdgen.main(["--check"]) == 0


def test_one_crd_per_kind_galley_serves_in_every_version() -> None:
    crds = {d["metadata"]["name"]: d for d in yaml.safe_load_all(crdgen.OUTPUT.read_text()) if d}
    kinds = [info for info in supported_kinds() if info.group]
    assert set(crds) == {f"{info.plural}.{info.group}" for info in kinds}
    for info in kinds:
        spec = crds[f"{info.plural}.{info.group}"]["spec"]
        assert (spec["group"], spec["names"]["kind"], spec["scope"]) == (info.group, info.kind, "Namespaced")
        assert [v["name"] for v in spec["versions"]] == list(info.versions)
        assert all(v["served"] for v in spec["versions"])
        assert [v["name"] for v in spec["versions"] if v["storage"]] == [info.versions[0]]
        assert spec["names"].get("shortNames", []) == list(info.short_names)
        for version in spec["versions"]:
            root = version["schema"]["openAPIV3Schema"]
            assert root["type"] == "object" and root["properties"]["spec"]["x-kubernetes-preserve-unknown-fields"]


def test_check_reports_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "crds.yaml"
    stale.write_text("# old\n")
    assert crdgen.main(["--check", "--output", str(stale)]) == 1
    assert crdgen.main(["--output", str(stale)]) == 0
    assert crdgen.main(["--check", "--output", str(stale)]) == 0
