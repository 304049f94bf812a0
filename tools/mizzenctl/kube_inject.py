"""`mizzenctl kube-inject -f FILE|-`: istioctl's manual injection, with the webhook's code.

Every document of a pod-bearing kind (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet,
Job, CronJob, ReplicationController, and those inside a List) has its pod template injected
by `libs.inject`, exactly as the sidecar injector's webhook injects the pod; every other
document is written back byte for byte.  Config as istioctl takes it: --meshConfigFile
(the `mesh` YAML or the `istio` ConfigMap), --injectConfigFile (the injector ConfigMap's
`config`, or the whole ConfigMap) and --valuesFile (its `values`).  A pod that cannot be
injected fails the whole command, naming the document and the field; nothing is written.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from libs.inject import (
    InjectError,
    InjectionConfig,
    InvalidPod,
    MeshSettings,
    Workload,
    inject,
    load_injection_config,
    load_mesh_config,
)
from tools.mizzenctl.inputs import InputError, iter_inputs

# Where each kind keeps its pod template.
TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
# The Kubernetes YAML reader's separator: a line that is "---" and nothing else.
_SEPARATOR = re.compile(r"^---[ \t]*\r?$", re.MULTILINE)

Warn = Callable[[str], None]


class KubeInjectError(Exception):
    pass


def _describe(document: dict[str, Any]) -> str:
    metadata = document.get("metadata") or {}
    return f"{document.get('kind')} {metadata.get('namespace') or 'default'}/{metadata.get('name', '')}"


def _template(document: dict[str, Any]) -> dict[str, Any] | None:
    node: Any = document
    for key in TEMPLATE_PATHS[str(document["kind"])]:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def inject_object(document: dict[str, Any], config: InjectionConfig, mesh: MeshSettings, warn: Warn) -> bool:
    """Inject `document`'s pod template in place; False when it was left as it was."""
    if document.get("kind") == "List":
        changed = [inject_object(item, config, mesh, warn) for item in document.get("items") or []
                   if isinstance(item, dict)]
        return any(changed)
    if document.get("kind") not in TEMPLATE_PATHS:
        return False
    template = _template(document)
    prefix = "".join(f"{key}." for key in TEMPLATE_PATHS[str(document["kind"])])
    if template is None:
        raise KubeInjectError(f"{_describe(document)}: {prefix.rstrip('.') or 'the document'} has no pod template")
    metadata = document.get("metadata") or {}
    namespace = str((template.get("metadata") or {}).get("namespace") or metadata.get("namespace") or "default")
    workload = Workload(str(document["kind"]), str(document.get("apiVersion", "v1")), str(metadata.get("name", "")))
    try:
        injection = inject({"metadata": template.get("metadata") or {}, "spec": template.get("spec") or {}},
                           namespace, workload, config, mesh, requested=True)
    except InvalidPod as exc:
        raise KubeInjectError(f"{_describe(document)}: {exc.under(prefix)}") from exc
    except InjectError as exc:
        raise KubeInjectError(f"{_describe(document)}: {exc}") from exc
    if not injection.decision.inject:
        warn(f"skipping {_describe(document)}: {injection.decision.reason}")
        return False
    template["metadata"] = injection.pod["metadata"]
    template["spec"] = injection.pod["spec"]
    return True


def inject_text(text: str, source: str, config: InjectionConfig, mesh: MeshSettings, warn: Warn) -> str:
    """Every document of `text`, injected or as written, each followed by `---`."""
    out: list[str] = []
    for index, raw in enumerate(_SEPARATOR.split(text)):
        try:
            document = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise KubeInjectError(f"{source}[{index}]: not YAML: {exc}") from exc
        if not raw.strip():
            continue
        try:
            changed = isinstance(document, dict) and inject_object(document, config, mesh, warn)
        except KubeInjectError as exc:
            raise KubeInjectError(f"{source}[{index}] {exc}") from exc
        body = yaml.safe_dump(document, sort_keys=False, width=4096) if changed else raw.strip("\n") + "\n"
        out.append(body + "---\n")
    return "".join(out)


def load_config(args: argparse.Namespace) -> tuple[InjectionConfig, MeshSettings]:
    mesh = MeshSettings()
    if args.mesh_config_file:
        mesh = load_mesh_config(Path(args.mesh_config_file).read_text(), args.mesh_config_file)
    config_text = Path(args.inject_config_file).read_text() if args.inject_config_file else None
    values_text = Path(args.values_file).read_text() if args.values_file else None
    document = yaml.safe_load(config_text) if config_text else None
    if isinstance(document, dict) and document.get("kind") == "ConfigMap":
        # The whole istio-sidecar-injector ConfigMap; a --valuesFile overrides its values.
        data = document.get("data")
        if not isinstance(data, dict):
            raise KubeInjectError(f"{args.inject_config_file}: data must map keys to strings")
        config_text = data.get("config")
        values_text = values_text if values_text is not None else data.get("values")
    source = args.inject_config_file or args.values_file or "defaults"
    return load_injection_config(config_text, values_text, source=source), mesh


def run(args: argparse.Namespace) -> int:
    def warn(line: str) -> None:
        print(f"warning: {line}", file=sys.stderr)

    try:
        config, mesh = load_config(args)
        for line in config.warnings:
            warn(line)
        output = "".join(inject_text(data.decode(), source, config, mesh, warn)
                         for source, data in iter_inputs(args.filename))
    except (KubeInjectError, InjectError, InputError, yaml.YAMLError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    if args.output:
        Path(args.output).write_text(output)
    else:
        sys.stdout.write(output)
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("kube-inject", help="add Istio's sidecar to the pods of Kubernetes YAML (as the "
                                                     "sidecar injector's webhook would)")
    parser.add_argument("-f", "--filename", action="append", required=True, help="file, directory or - (stdin)")
    parser.add_argument("-o", "--output", help="write the injected YAML here (default: standard output)")
    parser.add_argument("--meshConfigFile", "--mesh-config-file", dest="mesh_config_file",
                        help="mesh config: the `mesh` YAML of the `istio` ConfigMap, or the ConfigMap")
    parser.add_argument("--injectConfigFile", "--inject-config-file", dest="inject_config_file",
                        help="injection config: the `config` of the istio-sidecar-injector ConfigMap, or the "
                             "ConfigMap")
    parser.add_argument("--valuesFile", "--values-file", dest="values_file",
                        help="injection values: the `values` of the istio-sidecar-injector ConfigMap")
    parser.set_defaults(run=run)
