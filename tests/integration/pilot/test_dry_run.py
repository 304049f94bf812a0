"""`apply --dry-run` and `delete --dry-run`'s diff against a running control plane and real
Envoys: pilot's `/debug/dryrun` names exactly the proxies a change would reach, with the
resources it would send them, predicts what each Envoy then holds, and stores and pushes
nothing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from libs.envoy import CLUSTER_TYPE
from samples.echo import EchoServer
from tests.harness.config_env import ConfigEnv
from tests.harness.http import HTTP
from tests.harness.kv import config_entries
from tests.harness.mesh import Proxy
from tests.harness.ports import free_port
from tests.harness.routing import version_subsets
from tests.harness.upstreams import Workload, service_entry
from tests.harness.upstreams import gateway as gateway_yaml

pytestmark = pytest.mark.integration

REVIEWS = "reviews.default.svc.cluster.local"
GATEWAY = "ingressgateway.istio-system"
PRODUCTPAGE = "productpage.default"
OTHER = "other.other"
PRODUCTPAGE_IP = "127.0.42.1"
OTHER_IP = "127.0.42.2"


def front(subset: str) -> str:
    """The gateway's VirtualService: everything to one subset of reviews."""
    return f"""\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: front, namespace: default}}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - route: [{{destination: {{host: reviews, subset: {subset}}}}}]
"""


# For the mesh (no gateways): what sidecars calling reviews do.
MESH_ROUTE = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
"""

# The namespace `other` sees only its own services.
OTHER_SCOPE = """\
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: other}
spec:
  egress:
  - hosts: ["./*"]
"""


@pytest.fixture(scope="module")
def reviews() -> Iterator[dict[str, EchoServer]]:
    servers = {v: EchoServer(f"reviews-{v}").start() for v in ("v1", "v2", "v3")}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="module")
def mesh(env: ConfigEnv, gateway: Proxy, reviews: dict[str, EchoServer]) -> dict[str, Any]:
    """The module's config and proxies: the ingress gateway, a sidecar in `default` and
    one in `other`, which sees nothing of `default`."""
    port = free_port()
    env.apply("gateway", gateway_yaml(port))
    env.apply("reviews-se", service_entry(
        REVIEWS, [Workload(server, {"app": "reviews", "version": v}) for v, server in reviews.items()]))
    env.apply("reviews-dr", version_subsets("reviews", "v1", "v2"))
    env.apply("front", front("v1"))
    env.apply("other-scope", OTHER_SCOPE)
    proxies = {
        GATEWAY: gateway,
        PRODUCTPAGE: env.mesh.proxy(env.pilot, name="productpage", bind_address=PRODUCTPAGE_IP, interception="NONE",
                                    labels={"app": "productpage"}, wait_live=False),
        OTHER: env.mesh.proxy(env.pilot, name="other", namespace="other", bind_address=OTHER_IP, interception="NONE",
                              labels={"app": "other"}, wait_live=False),
    }
    env.add_proxies(proxies[PRODUCTPAGE], proxies[OTHER])
    return {"port": port, "proxies": proxies}


@pytest.fixture
def served(mesh: dict[str, Any], config: ConfigEnv) -> tuple[ConfigEnv, dict[str, Any]]:
    return config, mesh


def dry_run(env: ConfigEnv, text: str, **params: str) -> dict[str, Any]:
    response = HTTP.post(f"{env.pilot.monitoring}/debug/dryrun", content=text, params=params,
                         headers={"content-type": "application/yaml"}, timeout=60)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def changes(answer: dict[str, Any]) -> dict[str, list[tuple[str, str, str]]]:
    """proxy -> [(type, name, change)], for the proxies whose config would change."""
    return {p["name"]: [(c["type"], c["name"], c["change"]) for kind in ("clusters", "endpoints", "listeners", "routes")
                        for c in p["changes"].get(kind, [])] for p in answer["proxies"]}


def observed(env: ConfigEnv, proxies: dict[str, Proxy]) -> dict[str, Any]:
    """Everything a dry run must leave alone: what each Envoy holds, what pilot sent and
    each stream ACKed, pilot's pushes, and the stored config."""
    syncz = env.pilot.get("/debug/syncz").json()
    return {
        "envoy": {name: proxy.admin.config_dump() for name, proxy in proxies.items()},
        "version": syncz["version"],
        "streams": {row["name"]: {t: (s["sent"], s["acked"], s["nonce"], s["sent_at"]) for t, s in row["types"].items()}
                    for row in syncz["proxies"]},
        "pushes": env.pilot.get("/debug/push_status").json()["recent"],
        "stored": config_entries(env.mesh.nats.url),
    }


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, indent=2)


def patched(before: str, diff: str) -> str:
    """`before` with a unified diff's hunks applied: what the dry run says it becomes."""
    old = before.splitlines()
    out: list[str] = []
    at = 0
    for line in diff.splitlines()[2:]:
        hunk = re.match(r"@@ -(\d+)(?:,(\d+))? ", line)
        if hunk:
            start = int(hunk.group(1)) - (0 if hunk.group(2) == "0" else 1)
            out.extend(old[at:start])
            at = start
        elif line.startswith("+"):
            out.append(line[1:])
        else:
            # A context or removed line: it must be what `before` has there.
            assert old[at] == line[1:], (old[at], line)
            if line.startswith(" "):
                out.append(old[at])
            at += 1
    out.extend(old[at:])
    return "\n".join(out)


def envoy_route(proxy: Proxy, name: str) -> dict[str, Any]:
    entry = proxy.admin.route_config(name)
    assert entry is not None, f"{name} is not among the Envoy's routes"
    return dict(entry["route_config"])


def envoy_cluster(proxy: Proxy, name: str) -> dict[str, Any] | None:
    return next((dict(e["cluster"]) for e in proxy.admin.dynamic(CLUSTER_TYPE) if e["cluster"]["name"] == name), None)


def upstream(port: int) -> str:
    return str(HTTP.get(f"http://127.0.0.1:{port}/", timeout=10).headers["x-upstream"])


def test_a_virtual_service_change_is_a_route_diff_for_exactly_the_proxies_it_reaches(
        served: tuple[ConfigEnv, dict[str, Any]]) -> None:
    env, mesh = served
    proxies, port = mesh["proxies"], mesh["port"]
    before = observed(env, proxies)

    # Bound to the gateway: only the gateway's routes.
    gateway_change = dry_run(env, front("v2"))
    assert gateway_change["resources"] == ["VirtualService default/front"]
    assert changes(gateway_change) == {GATEWAY: [("routes", f"http.{port}", "changed")]}
    assert sorted(gateway_change["unchanged"]) == [OTHER, PRODUCTPAGE]
    (change,) = gateway_change["proxies"][0]["changes"]["routes"]
    assert change["diff"].splitlines()[:2] == [f"--- {GATEWAY} routes http.{port} (now)",
                                               f"+++ {GATEWAY} routes http.{port} (after apply)"]
    removed = [line for line in change["diff"].splitlines()[2:] if line.startswith(("-", "+"))]
    assert [(line[0], line[1:].strip()) for line in removed] == [
        ("-", f'"cluster": "outbound|80|v1|{REVIEWS}",'), ("+", f'"cluster": "outbound|80|v2|{REVIEWS}",')]

    # For the mesh: the sidecar that sees reviews, not the gateway, not the sidecar of
    # a namespace that does not see it.
    mesh_change = dry_run(env, MESH_ROUTE)
    assert changes(mesh_change) == {PRODUCTPAGE: [("routes", "http_proxy", "changed")]}
    (predicted,) = mesh_change["proxies"][0]["changes"]["routes"]

    # Nothing was stored or pushed: every Envoy holds what it held, traffic goes where it went.
    assert observed(env, proxies) == before
    assert upstream(port) == "reviews-v1"

    # Applied for real, the sidecar's Envoy ends up with exactly what the diff said.
    now = canonical(envoy_route(proxies[PRODUCTPAGE], "http_proxy"))
    env.apply("mesh-route", MESH_ROUTE)
    assert canonical(envoy_route(proxies[PRODUCTPAGE], "http_proxy")) == patched(now, predicted["diff"])
    # Once applied, it changes nothing more.
    assert changes(dry_run(env, MESH_ROUTE)) == {}


def test_a_destination_rule_subset_change_is_a_cluster_and_endpoint_diff(
        served: tuple[ConfigEnv, dict[str, Any]], reviews: dict[str, EchoServer]) -> None:
    env, mesh = served
    proxies = mesh["proxies"]
    before = observed(env, proxies)
    v3 = f"outbound|80|v3|{REVIEWS}"

    answer = dry_run(env, version_subsets("reviews", "v1", "v2", "v3"))
    expected = [("clusters", v3, "added"), ("endpoints", v3, "added")]
    assert changes(answer) == {GATEWAY: expected, PRODUCTPAGE: expected}
    assert answer["unchanged"] == [OTHER]
    by_proxy = {p["name"]: p["changes"] for p in answer["proxies"]}
    (cluster,) = by_proxy[GATEWAY]["clusters"]
    (endpoints,) = by_proxy[GATEWAY]["endpoints"]
    assert endpoints["diff"].splitlines()[0] == f"--- {GATEWAY} endpoints {v3} (now)"
    assert f'"address": "{reviews["v3"].host}"' in endpoints["diff"]
    assert f'"port_value": {reviews["v3"].port}' in endpoints["diff"]
    assert str(reviews["v1"].port) not in endpoints["diff"]

    # A subset dropped: its cluster and load assignment go.
    dropped = changes(dry_run(env, version_subsets("reviews", "v1")))
    gone = [("clusters", f"outbound|80|v2|{REVIEWS}", "removed"), ("endpoints", f"outbound|80|v2|{REVIEWS}", "removed")]
    assert dropped == {GATEWAY: gone, PRODUCTPAGE: gone}

    assert observed(env, proxies) == before
    assert envoy_cluster(proxies[GATEWAY], v3) is None

    try:
        env.apply("reviews-dr", version_subsets("reviews", "v1", "v2", "v3"))
        # What the Envoy took is the cluster the dry run showed, field for field.
        assert canonical(envoy_cluster(proxies[GATEWAY], v3)) == patched("", cluster["diff"])
    finally:
        env.apply("reviews-dr", version_subsets("reviews", "v1", "v2"))


def test_one_proxy_invalid_config_and_unknown_proxies(served: tuple[ConfigEnv, dict[str, Any]]) -> None:
    env, _ = served
    one = dry_run(env, version_subsets("reviews", "v1", "v2", "v3"), proxyID=PRODUCTPAGE)
    assert list(changes(one)) == [PRODUCTPAGE] and one["unchanged"] == []

    invalid = HTTP.post(f"{env.pilot.monitoring}/debug/dryrun", content=front("v2").replace("subset: v2", "subset: 7"),
                        timeout=30)
    assert invalid.status_code == 422
    detail = invalid.json()["detail"]
    assert detail["message"] == "the proposed config is not valid; nothing was compared"
    assert any("VirtualService default/front" in e and "spec.http[0].route[0].destination.subset" in e
               for e in detail["errors"]), detail

    unknown = HTTP.post(f"{env.pilot.monitoring}/debug/dryrun", params={"proxyID": "nobody.nowhere"},
                        content=front("v2"), timeout=30)
    assert unknown.status_code == 404
    assert "not connected to this Pilot instance" in unknown.json()["detail"]


def mizzenctl(env: ConfigEnv, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI, told where galley and pilot are (no context of the user's)."""
    return subprocess.run([sys.executable, "-m", "tools.mizzenctl", *args, "--galley", env.galley.api,
                           "--pilot", env.pilot.monitoring], capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "MIZZEN_CONFIG_HOME": str(home)})


def test_mizzenctl_apply_dry_run_prints_each_proxys_diff_and_stores_nothing(
        served: tuple[ConfigEnv, dict[str, Any]], tmp_path: Path) -> None:
    env, mesh = served
    proxies, port = mesh["proxies"], mesh["port"]
    before = observed(env, proxies)
    change = tmp_path / "front.yaml"
    change.write_text(front("v2"))

    result = mizzenctl(env, tmp_path, "apply", "--dry-run", "-f", str(change))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "VirtualService default/front valid (dry run)"
    assert lines[1] == f"{GATEWAY}: routes 1 changed"
    assert lines[2:4] == [f"--- {GATEWAY} routes http.{port} (now)", f"+++ {GATEWAY} routes http.{port} (after apply)"]
    assert ("+", f'"cluster": "outbound|80|v2|{REVIEWS}",') in [(line[0], line[1:].strip()) for line in lines[4:]
                                                               if line.startswith(("+", "-"))]
    assert lines[-1] == "1 of 3 proxies' config would change (dry run, nothing was stored)"

    same = tmp_path / "same.yaml"
    same.write_text(front("v1"))
    result = mizzenctl(env, tmp_path, "apply", "--dry-run", "-f", str(same))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "no proxy's config would change (3 compared; dry run, nothing was stored)"

    assert observed(env, proxies) == before
    assert upstream(port) == "reviews-v1"


def test_a_delete_dry_run_names_what_it_would_delete_and_each_proxys_diff(
        served: tuple[ConfigEnv, dict[str, Any]]) -> None:
    env, mesh = served
    proxies, port = mesh["proxies"], mesh["port"]
    before = observed(env, proxies)

    answer = dry_run(env, front("v1"), action="delete")
    assert answer["action"] == "delete"
    assert answer["resources"] == ["VirtualService default/front"] and answer["notFound"] == []
    assert changes(answer) == {GATEWAY: [("routes", f"http.{port}", "changed")]}
    (change,) = answer["proxies"][0]["changes"]["routes"]
    assert change["diff"].splitlines()[1] == f"+++ {GATEWAY} routes http.{port} (after delete)"
    removed = [line[1:].strip() for line in change["diff"].splitlines()[2:] if line.startswith("-")]
    assert f'"cluster": "outbound|80|v1|{REVIEWS}",' in removed

    # An invalid spec still names what to delete; a name nothing has is not found.
    invalid = dry_run(env, front("v2").replace("subset: v2", "subset: 7"), action="delete")
    assert changes(invalid) == changes(answer)
    nothing = dry_run(env, front("v1").replace("name: front", "name: gone"), action="delete")
    assert nothing["notFound"] == ["VirtualService default/gone"] and changes(nothing) == {}

    assert observed(env, proxies) == before
    assert upstream(port) == "reviews-v1"
    bad = HTTP.post(f"{env.pilot.monitoring}/debug/dryrun", params={"action": "replace"}, content=front("v1"),
                    timeout=30)
    assert bad.status_code == 400
    assert bad.json()["detail"] == "action 'replace' is not one of apply, delete"


def test_mizzenctl_delete_dry_run_deletes_nothing_and_the_real_delete_does_what_it_showed(
        served: tuple[ConfigEnv, dict[str, Any]], tmp_path: Path) -> None:
    env, mesh = served
    proxies = mesh["proxies"]
    route = tmp_path / "mesh-route.yaml"
    route.write_text(MESH_ROUTE)
    applied = mizzenctl(env, tmp_path, "apply", "-f", str(route))
    assert applied.returncode == 0, applied.stderr
    env.sync()
    env.drained()
    try:
        before = observed(env, proxies)
        result = mizzenctl(env, tmp_path, "delete", "--dry-run", "-f", str(route))
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0] == "VirtualService default/reviews deleted (dry run)"
        assert lines[1] == f"{PRODUCTPAGE}: routes 1 changed"
        assert lines[3] == f"+++ {PRODUCTPAGE} routes http_proxy (after delete)"
        assert lines[-1] == "1 of 3 proxies' config would change (dry run, nothing was stored)"
        assert observed(env, proxies) == before
        diff = "\n".join(lines[2:-1])

        now = canonical(envoy_route(proxies[PRODUCTPAGE], "http_proxy"))
        deleted = mizzenctl(env, tmp_path, "delete", "-f", str(route))
        assert deleted.stdout.splitlines() == ["VirtualService default/reviews deleted"], deleted.stderr
        env.sync()
        env.drained()
        assert canonical(envoy_route(proxies[PRODUCTPAGE], "http_proxy")) == patched(now, diff)
    finally:
        mizzenctl(env, tmp_path, "delete", "-f", str(route))
