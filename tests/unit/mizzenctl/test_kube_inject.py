"""`mizzenctl kube-inject` as a user runs it: multi-document YAML on stdin or from files,
istioctl's config flags, errors that name the document and field, nothing half-written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

DATA = Path(__file__).resolve().parents[1] / "inject" / "testdata"


def kube_inject(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tools.mizzenctl", "kube-inject", *args], input=stdin,
                          capture_output=True, text=True, check=False, timeout=60)


def proxy(document: dict) -> dict:
    spec = document["spec"]["template"]["spec"] if document["kind"] != "Pod" else document["spec"]
    return next(c for c in spec["containers"] if c["name"] == "istio-proxy")


def test_multi_document_stdin() -> None:
    text = "\n---\n".join((DATA / name).read_text() for name in ("kinds.yaml", "skipped.yaml", "hello.yaml"))
    result = kube_inject("-f", "-", stdin=text)
    assert result.returncode == 0, result.stderr
    documents = [d for d in yaml.safe_load_all(result.stdout) if d is not None]
    kinds = [d["kind"] for d in documents]
    assert kinds == ["ReplicationController", "ReplicaSet", "CronJob", "DaemonSet", "Job", "List", "DaemonSet", "Job",
                     "Pod", "Service", "Deployment"]
    injected = [d["kind"] for d in documents[:5] + documents[-1:] if d["kind"] != "CronJob" and proxy(d)]
    assert injected == ["ReplicationController", "ReplicaSet", "DaemonSet", "Job", "Deployment"]
    cron = documents[2]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert [c["name"] for c in cron["initContainers"]] == ["istio-init"]
    assert proxy(documents[5]["items"][0])
    # The skipped ones say why, on stderr, as istioctl does.
    assert "skipping DaemonSet default/node-agent: the pod uses the host network" in result.stderr
    assert "skipping Job default/migrate: the pod's label sidecar.istio.io/inject=false" in result.stderr


def test_istioctl_config_flags(tmp_path: Path) -> None:
    mesh = tmp_path / "mesh.yaml"
    mesh.write_text("trustDomain: corp.example\ndefaultConfig:\n  proxyMetadata: {FROM_MESH: 'yes'}\n")
    configmap = tmp_path / "injector.yaml"
    configmap.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio-sidecar-injector"},
        "data": {"config": "policy: disabled\ntemplate: '{{ .Istio }}'\n",
                 "values": json.dumps({"global": {"hub": "r.example", "tag": "3"}})}}))
    values = tmp_path / "values.json"
    values.write_text(json.dumps({"global": {"hub": "other.example", "tag": "4"}}))
    out = tmp_path / "out.yaml"
    result = kube_inject("-f", str(DATA / "hello.yaml"), "--meshConfigFile", str(mesh), "--injectConfigFile",
                         str(configmap), "-o", str(out))
    assert result.returncode == 0, result.stderr
    # policy: disabled does not stop kube-inject: asking for it is the opt-in, as with istioctl.
    container = proxy(yaml.safe_load(out.read_text().removesuffix("---\n")))
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (container["image"], env["TRUST_DOMAIN"], env["FROM_MESH"]) == ("r.example/mizzen:3", "corp.example", "yes")
    assert "config.template holds Istio templates" in result.stderr
    with_values = kube_inject("-f", str(DATA / "hello.yaml"), "--injectConfigFile", str(configmap),
                              "--valuesFile", str(values))
    assert proxy(yaml.safe_load(with_values.stdout.removesuffix("---\n")))["image"] == "other.example/mizzen:4"


def test_an_error_names_the_document_and_field_and_writes_nothing(tmp_path: Path) -> None:
    bad = (DATA / "traffic-annotations.yaml").read_text().replace('"7,8,9"', '"7,smtp"')
    out = tmp_path / "out.yaml"
    result = kube_inject("-f", "-", "-o", str(out), stdin=(DATA / "hello.yaml").read_text() + "---\n" + bad)
    assert result.returncode == 1
    assert result.stdout == "" and not out.exists()
    assert result.stderr.strip() == (
        "error: <stdin>[1] Deployment default/traffic: spec.template.metadata.annotations"
        "[traffic.sidecar.istio.io/excludeOutboundPorts]: 'smtp' is not a port number (1-65535)")


def test_bad_config_files_are_named(tmp_path: Path) -> None:
    mesh = tmp_path / "mesh.yaml"
    mesh.write_text("defaultConfig: {concurrency: many}\n")
    result = kube_inject("-f", str(DATA / "hello.yaml"), "--meshConfigFile", str(mesh))
    assert result.returncode == 1
    assert f"{mesh}" in result.stderr and "defaultConfig.concurrency: must be an integer" in result.stderr
    missing = kube_inject("-f", str(DATA / "hello.yaml"), "--valuesFile", str(tmp_path / "nope.json"))
    assert missing.returncode == 1 and "nope.json: No such file or directory" in missing.stderr
