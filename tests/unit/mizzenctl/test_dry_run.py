"""`mizzenctl apply --dry-run`'s diff: what it sends pilot, and how it prints the answers
of several pilots."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from libs.config import parse_text
from tests.harness.ports import free_port
from tools.mizzenctl import dry_run

FILES = [
    ("vs.yaml", b"""\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v1}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: broken}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, port: {number: 99999}}}]}]
"""),
    ("mesh.yaml", b"""\
apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    outboundTrafficPolicy: {mode: REGISTRY_ONLY}
"""),
]


def test_the_valid_resources_reach_pilot_as_a_list_it_reads_back_unchanged() -> None:
    resources = dry_run.proposed(FILES, "shop")
    assert [r.ref for r in resources] == ["VirtualService shop/reviews", "MeshConfig istio-system/istio"]
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": [r.to_dict() for r in resources]})
    read = parse_text(body, "request")
    assert read.ok, read.errors()
    assert [r for _, r in read.resources] == resources


def answer(pilot: str, proxies: list[dict[str, object]], unchanged: list[str]) -> dict[str, object]:
    return {"pilot": pilot, "version": "7", "resources": [], "ignored": [], "proxies": proxies,
            "unchanged": unchanged}


def proxy(name: str, changes: dict[str, list[dict[str, str]]], **extra: object) -> dict[str, object]:
    return {"proxy": f"sidecar~1~{name}~x", "name": name, "changes": changes, "error": None, "unsettled": [],
            **extra}


def change(kind: str, name: str, verb: str) -> dict[str, str]:
    return {"type": kind, "name": name, "change": verb,
            "diff": f"--- p {kind} {name} (now)\n+++ p {kind} {name} (after apply)\n@@ -1 +1 @@\n-a\n+b"}


def test_each_proxy_is_printed_once_with_its_diffs_in_push_order() -> None:
    gateway = proxy("gw.istio-system", {"routes": [change("routes", "http.8080", "changed")],
                                        "clusters": [change("clusters", "c1", "added"),
                                                     change("clusters", "c2", "added")]})
    sidecar = proxy("a.default", {"endpoints": [change("endpoints", "c1", "added")]},
                    unsettled=["RDS version 7 is sent but not ACKed yet"])
    effect = dry_run.merge([answer("pilot-1", [gateway], ["b.default"]),
                            answer("pilot-2", [sidecar, gateway], ["c.default", "b.default"])])
    out, err = dry_run.render(effect)
    assert out[0] == "a.default: endpoints 1 added"
    assert out[2] == "gw.istio-system: clusters 2 added; routes 1 changed"
    assert [line.split(" (")[0] for line in "\n".join(out).splitlines() if line.startswith("---")] == [
        "--- p endpoints c1", "--- p clusters c1", "--- p clusters c2", "--- p routes http.8080"]
    assert out[-1] == "2 of 4 proxies' config would change (dry run, nothing was stored)"
    assert err == ["note: a.default: RDS version 7 is sent but not ACKed yet; its diff starts from what pilot "
                   "last sent it"]


def test_when_nothing_changes_it_says_so() -> None:
    out, err = dry_run.render(dry_run.merge([answer("pilot-1", [], ["a.default", "b.default"])]))
    assert out == ["no proxy's config would change (2 compared; dry run, nothing was stored)"]
    assert err == []


def test_config_pilot_would_refuse_to_serve_is_a_warning_naming_the_proxy() -> None:
    refused = proxy("a.default", {}, error="pilot would refuse to serve this config to it (EDS cluster x has no "
                                            "load assignment); it would keep what it holds")
    out, err = dry_run.render(dry_run.merge([answer("pilot-1", [refused], [])]))
    assert out == ["no proxy's config would change (1 compared; dry run, nothing was stored)"]
    assert err == ["warning: a.default: pilot would refuse to serve this config to it (EDS cluster x has no load "
                   "assignment); it would keep what it holds"]


def test_files_without_valid_resources_ask_no_pilot(tmp_path: Path) -> None:
    only_invalid = [("broken.yaml", FILES[0][1].split(b"---\n")[1])]
    assert dry_run.proposed(only_invalid, "default") == []
    args = argparse.Namespace(namespace="default", pilot=["http://127.0.0.1:1"], state_dir=str(tmp_path))
    assert dry_run.show(args, only_invalid) == ([], [], True)


def test_a_pilot_that_cannot_be_asked_fails_the_dry_run_naming_it(tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    args = argparse.Namespace(namespace="default", pilot=[nobody], state_dir=str(tmp_path), galley=None)
    out, err, shown = dry_run.show(args, FILES)
    assert (out, shown) == ([], False)
    (line,) = err
    assert line.startswith(f"error: cannot show what the files would change: cannot reach pilot at {nobody}")
    assert "tried the URL given on the command line" in line
