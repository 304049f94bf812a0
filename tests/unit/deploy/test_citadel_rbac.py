"""citadel's Role in deploy/kubernetes grants every call its Kubernetes CA store makes on the
CA secret: the store runs against a recording client (create the root, load it, save a
rotation step), and each call is checked against the Role's rules as the API server's
RBAC would match them (resource, verb, and resourceNames where a rule names them)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml

from libs.kube import ResourceRef
from libs.pki import parse_key_type
from services.citadel.ca.store_kube import CA_SECRET_NAME, KubeSecretCaStore

MANIFEST = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes" / "base" / "citadel.yaml"
NAMESPACE = "istio-system"


class RecordingKube:
    """Keeps secrets in a dict and records (verb, resource, name) per call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.objects: dict[str, dict[str, Any]] = {}

    async def get(self, ref: ResourceRef, name: str, *, namespace: str) -> dict[str, Any] | None:
        self.calls.append(("get", ref.plural, name))
        return self.objects.get(name)

    async def create(self, ref: ResourceRef, body: dict[str, Any], *, namespace: str) -> dict[str, Any]:
        name = body["metadata"]["name"]
        self.calls.append(("create", ref.plural, name))
        self.objects[name] = {**body, "metadata": {**body["metadata"], "resourceVersion": "1"}}
        return self.objects[name]

    async def patch(self, ref: ResourceRef, name: str, patch: list[dict[str, Any]], *, namespace: str,
                    content_type: str) -> dict[str, Any]:
        self.calls.append(("patch", ref.plural, name))
        for op in patch:
            if op["op"] == "add" and op["path"] == "/data":
                self.objects[name]["data"] = op["value"]
        return self.objects[name]


def role_rules() -> list[dict[str, Any]]:
    for document in yaml.safe_load_all(MANIFEST.read_text()):
        if document and document["kind"] == "Role" and document["metadata"]["namespace"] == NAMESPACE:
            rules: list[dict[str, Any]] = document["rules"]
            return rules
    raise AssertionError(f"no Role in {NAMESPACE} in {MANIFEST}")


def allowed(rules: list[dict[str, Any]], verb: str, resource: str, name: str) -> bool:
    return any(resource in rule["resources"] and verb in rule["verbs"]
               and ("resourceNames" not in rule or name in rule["resourceNames"]) for rule in rules)


async def test_the_role_grants_every_call_the_kubernetes_ca_store_makes() -> None:
    kube = RecordingKube()
    store = KubeSecretCaStore(kube, NAMESPACE)  # type: ignore[arg-type]
    now = dt.datetime.now(dt.UTC)
    roots = await store.create_roots(parse_key_type("ec-p256"), "cluster.local", now)
    assert await store.load(now) is not None
    await store.save_roots(roots, roots, now)
    verbs = {verb for verb, _, _ in kube.calls}
    assert verbs == {"get", "create", "patch"}
    rules = role_rules()
    refused = [call for call in kube.calls if not allowed(rules, *call)]
    assert refused == []
    # Patch is the CA secret's alone.
    assert not allowed(rules, "patch", "secrets", "some-other-secret")
    assert {name for _, _, name in kube.calls} == {CA_SECRET_NAME}
