"""Pilot's translation, whole, for five proxies, compared with reviewed golden files.

Each case under `testdata/golden/<case>/` is three fixed inputs:

- `config.yaml`: Istio config as users write it (and the `istio` ConfigMap, when the
  case needs a mesh config), validated by galley's rules;
- `registry.yaml`: the service registries' contents: `kubernetes:` objects (Services,
  EndpointSlices, Pods, Nodes) as the Kubernetes registry holds them, and `mesh-workloads:`
  registrations as the local mesh's agents write them;
- `node.yaml`: the Envoy `Node` the proxy sends (id, metadata), read by pilot's own
  `parse_node`, so what tells a captured sidecar from one in HTTP-proxy mode, a gateway
  or a gRPC client is the metadata, as on the wire;

and, per xDS type pilot generates for that proxy, a golden file (`clusters.json`,
`endpoints.json`, `listeners.json`, `routes.json`): every resource by name, each as it
travels (packed in an `Any`, `@type` kept) in protobuf's JSON mapping with proto field
names (as Envoy's `/config_dump` prints), sorted keys, indent 2.  Pilot generates no
secrets (the agent beside each Envoy serves them over SDS; pilot only names them), so no
case has a `secrets.json`; should it start to, the new type shows up as a missing golden
file.  `warnings.txt`, when pilot warns about the case's config, holds what it would log.
Nothing is scrubbed: every input is fixed, and translation reads no clock and no
randomness (the output is the same under any PYTHONHASHSEED).  What the serve layer sends
(encoded once, shared between proxies, carried over endpoint-only pushes) is checked
against the same files.

`make golden` rewrites the golden files after a deliberate change (it sets
MIZZEN_REGENERATE_GOLDEN=1); review them in the diff.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from envoy.config.core.v3 import base_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from libs.config import MESH_CONFIG_KIND, Resource, parse_text
from libs.config.workloads import WorkloadRegistration
from libs.envoy import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE, pack, short_type
from services.pilot.envoy_json import resource_dict
from services.pilot.model import kube
from services.pilot.model.config import ConfigSnapshot
from services.pilot.model.mesh import MeshConfig, mesh_from_config
from services.pilot.model.proxy import Proxy, parse_node
from services.pilot.model.push_context import PushContext
from services.pilot.model.registry import RegistryContents
from services.pilot.networking import generator
from services.pilot.networking.memo import TranslationMemo
from services.pilot.workloads_watch import WorkloadWatcher, instance_of
from services.pilot.xds.cache import SnapshotCache

DATA = Path(__file__).parent / "testdata" / "golden"
CASES = sorted(path.name for path in DATA.iterdir() if (path / "config.yaml").exists())
REGENERATE = os.environ.get("MIZZEN_REGENERATE_GOLDEN") == "1"
# Pilot's flag default (--system-namespace): where the `istio` ConfigMap is read from.
SYSTEM_NAMESPACE = "istio-system"
CONFIG_REVISION = 1
FILE_NAMES = {CLUSTER_TYPE: "clusters.json", ENDPOINT_TYPE: "endpoints.json", LISTENER_TYPE: "listeners.json",
              ROUTE_TYPE: "routes.json", SECRET_TYPE: "secrets.json"}
WARNINGS = "warnings.txt"
_KUBE_STORES = {"Service": "services", "EndpointSlice": "slices", "Pod": "pods"}


@dataclass(frozen=True)
class Case:
    name: str
    proxy: Proxy
    push: PushContext


def _config(name: str, text: str, overrides: Iterable[str]) -> ConfigSnapshot:
    resources: dict[str, Resource] = {}
    for source, document in ((f"{name}/config.yaml", text),
                             *((f"{name} override {i}", o) for i, o in enumerate(overrides))):
        result = parse_text(document, source)
        assert result.ok, f"{source}: invalid config:\n" + "\n".join(result.errors())
        assert not result.unsupported, f"{source}: kinds pilot does not serve: {result.unsupported}"
        # An override replaces the resource of its kind, namespace and name, as an apply would.
        resources.update({resource.key: resource for _, resource in result.resources})
    return ConfigSnapshot(CONFIG_REVISION, resources)


def _kubernetes(objects: list[Mapping[str, Any]], domain_suffix: str) -> RegistryContents:
    held = kube.KubeObjects()
    for obj in objects:
        meta = obj.get("metadata") or {}
        if obj.get("kind") == "Node":
            held.nodes[meta["name"]] = obj
        else:
            store = _KUBE_STORES.get(str(obj.get("kind")))
            assert store is not None, f"registry.yaml: the Kubernetes registry holds no {obj.get('kind')!r}"
            getattr(held, store)[(meta.get("namespace", "default"), meta["name"])] = obj
    return kube.contents(held, domain_suffix)


def _mesh_workloads(registrations: list[Mapping[str, Any]]) -> RegistryContents:
    instances = [instance_of(WorkloadRegistration.from_json(json.dumps(r).encode())) for r in registrations]
    # Ordered as the watcher lists them (by KV key, `<namespace>.<name>`).
    ordered = sorted(instances, key=lambda w: (w.namespace, w.name))
    return RegistryContents(WorkloadWatcher.name, workloads=tuple(ordered))


def load_case(name: str, *, overrides: Iterable[str] = ()) -> Case:
    """The case's proxy and push; `overrides` are YAML documents applied over its config."""
    folder = DATA / name
    config = _config(name, (folder / "config.yaml").read_text(), overrides)
    mesh = mesh_from_config(config.of_kind(MESH_CONFIG_KIND), MeshConfig(), SYSTEM_NAMESPACE)
    registry = yaml.safe_load((folder / "registry.yaml").read_text()) or {}
    unknown = set(registry) - {"kubernetes", "mesh-workloads"}
    assert not unknown, f"{name}/registry.yaml: unknown registries {sorted(unknown)}"
    registries = []
    if "kubernetes" in registry:
        registries.append(_kubernetes(registry["kubernetes"], mesh.domain_suffix))
    if "mesh-workloads" in registry:
        registries.append(_mesh_workloads(registry["mesh-workloads"]))
    node = json_format.ParseDict(yaml.safe_load((folder / "node.yaml").read_text()), base_pb2.Node())
    return Case(name, parse_node(node), PushContext.build(config, mesh, registries=registries))


def render(resources: Mapping[str, Message]) -> str:
    """Canonical JSON: each resource packed as it travels, by name."""
    as_dicts = {name: json_format.MessageToDict(pack(resource), preserving_proto_field_name=True)
                for name, resource in resources.items()}
    return json.dumps(as_dicts, sort_keys=True, indent=2) + "\n"


def file_name(type_url: str) -> str:
    return FILE_NAMES.get(type_url, f"{short_type(type_url).lower()}.json")


def translate(case: Case) -> dict[str, str]:
    """Golden file name -> its text: every xDS type pilot generates for the case's proxy,
    and the warnings it would log, if any."""
    config = generator.generate(case.proxy, case.push, TranslationMemo())
    files = {file_name(type_url): render(resources) for type_url, resources in config.resources.items()}
    if config.warnings:
        files[WARNINGS] = "".join(f"{warning}\n" for warning in config.warnings)
    return files


def mismatches(name: str, rendered: Mapping[str, str]) -> list[str]:
    """Each golden file of case `name` that `rendered` does not match, as a unified diff."""
    folder = DATA / name
    golden = {path.name: path.read_text() for path in golden_files(folder)}
    problems = []
    for file_name in sorted(rendered.keys() | golden.keys()):
        path = f"{folder.relative_to(DATA.parents[4])}/{file_name}"
        if file_name not in golden:
            problems.append(f"{path}: pilot now generates this type, and there is no golden file for it")
        elif file_name not in rendered:
            problems.append(f"{path}: pilot no longer generates this type")
        elif rendered[file_name] != golden[file_name]:
            problems.extend(_differences(path, golden[file_name], rendered[file_name]))
    return problems


def _diff(before: str, after: str, label: str) -> str:
    return "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                        fromfile=f"{label} (golden)", tofile=f"{label} (pilot now)"))


def _differences(path: str, golden: str, now: str) -> list[str]:
    """A diff per resource that changed, named, and the resources added or gone; the
    whole file's diff when it does not hold resources by name (warnings, a hand edit)."""
    try:
        before, after = json.loads(golden), json.loads(now)
    except json.JSONDecodeError:
        return [_diff(golden, now, path)]
    if not isinstance(before, dict) or not isinstance(after, dict):
        return [_diff(golden, now, path)]
    out = []
    for name in sorted(before.keys() | after.keys()):
        if name not in after:
            out.append(f"{path}: resource {name!r} is no longer generated")
        elif name not in before:
            out.append(f"{path}: resource {name!r} is new:\n{json.dumps(after[name], sort_keys=True, indent=2)}")
        elif before[name] != after[name]:
            out.append(_diff(json.dumps(before[name], sort_keys=True, indent=2) + "\n",
                             json.dumps(after[name], sort_keys=True, indent=2) + "\n", f"{path} {name!r}"))
    # Equal resources, unequal text: layout only (indentation, key order, final newline).
    return out or [_diff(golden, now, path)]


def golden_files(folder: Path) -> list[Path]:
    return sorted([*folder.glob("*.json"), *folder.glob(WARNINGS)])


def regenerate(name: str, rendered: Mapping[str, str]) -> None:
    folder = DATA / name
    for stale in golden_files(folder):
        if stale.name not in rendered:
            stale.unlink()
    for file_name, text in rendered.items():
        (folder / file_name).write_text(text)


@pytest.mark.parametrize("name", CASES)
def test_translation_matches_golden_files(name: str) -> None:
    rendered = translate(load_case(name))
    if REGENERATE:
        regenerate(name, rendered)
    problems = mismatches(name, rendered)
    if problems:
        pytest.fail(f"{name}: pilot's translation differs from its golden files:\n\n" + "\n".join(problems)
                    + "\nIf the change is intended, run `make golden` and review the golden files' diff.",
                    pytrace=False)


@pytest.mark.parametrize("name", CASES)
def test_what_pilot_serves_is_what_it_translates(name: str) -> None:
    """The serve layer's snapshot (each resource encoded once and shared, as streams send
    it, rendered as pilot's /debug/config_dump does) holds the golden resources, also when
    carried over to a second push of the same config and registry (endpoint-only)."""
    # Warnings are logged, not sent: taken from the translation.
    logged = {file: text for file, text in translate(load_case(name)).items() if file == WARNINGS}
    cache = SnapshotCache()
    for push in (1, 2):
        case = load_case(name)
        cache.set_push(case.push)
        snapshot = cache.get(case.proxy)
        assert snapshot is not None
        sent = {file_name(type_url): json.dumps({n: resource_dict(r) for n, r in encoded.items()},
                                                sort_keys=True, indent=2) + "\n"
                for type_url, encoded in snapshot.resources.items()}
        problems = mismatches(name, {**sent, **logged})
        assert not problems, f"push {push}: what pilot serves differs from the golden files:\n" + "\n".join(problems)


def test_every_case_is_here() -> None:
    """A case folder that lost its inputs must not silently stop being checked."""
    assert CASES == ["egress-gateway", "grpc-proxyless", "ingress-gateway-tls", "sidecar-captured",
                     "sidecar-http-proxy"]


CHANGED_DELAY = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings]
  http:
  - match:
    - headers:
        end-user: {exact: jason}
    fault:
      delay:
        percentage: {value: 100.0}
        fixedDelay: 5s
    route:
    - destination: {host: ratings, subset: v1}
  - route:
    - destination: {host: ratings, subset: v1}
"""


def test_a_changed_virtual_service_fails_the_comparison_with_a_diff() -> None:
    """The net is not vacuous: the captured sidecar with its ratings VirtualService's
    delay changed from 7 s to 5 s no longer matches, in routes.json only, and the failure
    shows the changed field."""
    case = "sidecar-captured"
    assert mismatches(case, translate(load_case(case))) == []
    problems = mismatches(case, translate(load_case(case, overrides=[CHANGED_DELAY])))
    assert len(problems) == 1
    # The route configuration "9080" of routes.json, named.
    assert problems[0].startswith("--- tests/unit/pilot/testdata/golden/sidecar-captured/routes.json '9080' (golden)")
    changed = [line for line in problems[0].splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert [line.replace(" ", "") for line in changed] == ['-"fixed_delay":"7s",', '+"fixed_delay":"5s",']


# -- Istio's behaviour the golden review found missing, now pinned --------------------------

def _resources(name: str, type_url: str) -> dict[str, Any]:
    return dict(json.loads(translate(load_case(name))[file_name(type_url)]))


def test_istio_mutual_sends_the_destination_rules_sni() -> None:
    cluster = _resources("egress-gateway", CLUSTER_TYPE)[
        "outbound|443|cnn|istio-egressgateway.istio-system.svc.cluster.local"]
    assert cluster["transport_socket"]["typed_config"]["sni"] == "edition.cnn.com"


def test_strict_mtls_also_guards_the_inbound_passthrough() -> None:
    inbound = _resources("sidecar-captured", LISTENER_TYPE)["virtualInbound"]
    passthrough = [chain for chain in inbound["filter_chains"]
                   if chain.get("name", "").startswith("inbound-passthrough")]
    assert passthrough and all("transport_socket" in chain for chain in passthrough)
