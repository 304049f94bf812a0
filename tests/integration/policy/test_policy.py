"""The policy service judged by real Envoys and real traffic: Mixer's deniers, list checkers
and quotas (in memory and in a real Redis), every expression operator, the check cache,
AuthorizationPolicy CUSTOM pointing at it, and what happens when it or Redis goes away.

One control plane, policy service, Redis and set of proxies per module: `productpage-v1`
and `productpage-v2` call `ratings-v1` (policy checks fail closed) and `details-v1`
(annotated `policy.istio.io/check: allow-on-error`).  Each test applies its rules and
removes them afterwards."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import httpx
import pytest
from envoy.extensions.common.ratelimit.v3 import ratelimit_pb2
from envoy.service.ratelimit.v3 import rls_pb2, rls_pb2_grpc

from samples.echo import EchoServer
from tests.harness.config_env import ConfigEnv
from tests.harness.http import via_http_proxy
from tests.harness.kv import config_revision
from tests.harness.mesh import POLICY_HOST, Mesh, PolicyService, Proxy
from tests.harness.nats import start_nats
from tests.harness.processes import ProcessGroup
from tests.harness.redis import RedisServer, start_redis
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

V1_IP, RATINGS_IP, V2_IP, DETAILS_IP = "127.0.43.1", "127.0.43.2", "127.0.43.3", "127.0.43.4"
POLICY_A_IP, POLICY_B_IP, LISTS_IP = "127.0.43.20", "127.0.43.21", "127.0.43.30"
RATINGS_PORT, DETAILS_PORT = 19080, 19081


def mesh_config(*, fail_open: bool = False) -> str:
    return f"""\
apiVersion: v1
kind: ConfigMap
metadata: {{name: istio, namespace: istio-system}}
data:
  mesh: |
    mixerCheckServer: {POLICY_HOST}:9091
    policyCheckFailOpen: {str(fail_open).lower()}
    extensionProviders:
    - name: mizzen-policy
      envoyExtAuthzGrpc: {{service: {POLICY_HOST}, port: 9091}}
"""


ROUND_ROBIN_TO_POLICY = f"""\
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: istio-policy, namespace: istio-system}}
spec:
  host: {POLICY_HOST}
  trafficPolicy: {{loadBalancer: {{simple: ROUND_ROBIN}}}}
"""


SERVICES = f"""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: ratings, namespace: default}}
spec:
  hosts: [ratings.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9080, name: http, protocol: HTTP}}]
  workloadSelector: {{labels: {{app: ratings}}}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: details, namespace: default}}
spec:
  hosts: [details.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9081, name: http, protocol: HTTP}}]
  workloadSelector: {{labels: {{app: details}}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: ratings-v1, namespace: default}}
spec: {{address: {RATINGS_IP}, labels: {{app: ratings, version: v1}}, serviceAccount: bookinfo-ratings}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: details-v1, namespace: default}}
spec: {{address: {DETAILS_IP}, labels: {{app: details, version: v1}}, serviceAccount: bookinfo-details}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: productpage-v1, namespace: default}}
spec: {{address: {V1_IP}, labels: {{app: productpage, version: v1}}, serviceAccount: bookinfo-productpage}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: productpage-v2, namespace: default}}
spec: {{address: {V2_IP}, labels: {{app: productpage, version: v2}}, serviceAccount: bookinfo-productpage}}
"""


class ListServer:
    """An HTTP server answering a list checker's `providerUrl` with whatever `lines` holds."""

    def __init__(self, host: str) -> None:
        self.lines: list[str] = []
        self.status = 200
        self.fetches = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                body = "\n".join(owner.lines).encode()
                self.send_response(owner.status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self._server.server_address[0]}:{self._server.server_address[1]}/list.txt"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class World:
    config: ConfigEnv
    mesh: Mesh
    group: ProcessGroup
    base: Path
    policy: PolicyService
    redis: RedisServer
    lists: ListServer
    v1: Proxy
    v2: Proxy
    ratings: Proxy
    details: Proxy
    token: Path

    def restart_policy(self) -> PolicyService:
        self.policy = self.mesh.policy(name="policy-a", host=POLICY_A_IP, grpc_port=self.policy.grpc_port,
                                       http_check_port=self.policy.http_check_port)
        return self.policy

    def sync_policy(self, *replicas: PolicyService) -> None:
        """Wait until the policy replicas run the config in mesh-config now."""
        revision = config_revision(self.mesh.nats.url)
        for replica in replicas or (self.policy,):
            wait_until(lambda r=replica: r.metric("policy_config_revision") >= revision, timeout=15,  # type: ignore[misc]
                       what=f"{replica.process.name} to run config revision {revision}")

    def apply(self, name: str, text: str) -> None:
        self.config.apply(name, text)
        self.config.drained()
        self.sync_policy()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("policy")
    for folder in ("logs", "mesh", "config"):
        (base / folder).mkdir()
    group = ProcessGroup(base / "logs")
    ratings_app = EchoServer("ratings", RATINGS_IP, RATINGS_PORT).start()
    details_app = EchoServer("details", DETAILS_IP, DETAILS_PORT).start()
    lists = ListServer(LISTS_IP)
    try:
        redis = start_redis(group, base / "redis")
        nats = start_nats(group, base / "nats")
        mesh = Mesh(group, nats, base / "mesh")
        token = base / "token"
        token.write_text("s3cret\n")
        env = ConfigEnv.start(mesh, base / "config", galley_args=("--api-token-file", str(token)))
        policy = mesh.policy(name="policy-a", host=POLICY_A_IP)
        env.apply("mesh", mesh_config())
        env.apply("policy-service", policy.service_entry(POLICY_A_IP))
        env.apply("services", SERVICES)

        def sidecar(name: str, ip: str, app: str, version: str, **kwargs: object) -> Proxy:
            return env.add_proxy(mesh.proxy(env.pilot, name=name, bind_address=ip, interception="NONE",
                                            labels={"app": app, "version": version}, **kwargs))  # type: ignore[arg-type]

        v1 = sidecar("productpage-v1", V1_IP, "productpage", "v1")
        v2 = sidecar("productpage-v2", V2_IP, "productpage", "v2")
        ratings = sidecar("ratings-v1", RATINGS_IP, "ratings", "v1", app_ports={9080: RATINGS_PORT})
        details = sidecar("details-v1", DETAILS_IP, "details", "v1", app_ports={9081: DETAILS_PORT},
                          extra=("--annotations", "policy.istio.io/check=allow-on-error"))
        world = World(env, mesh, group, base, policy, redis, lists, v1, v2, ratings, details, token)
        world.sync_policy()
        yield world
    finally:
        lists.stop()
        ratings_app.stop()
        details_app.stop()
        group.stop_all()


@pytest.fixture
def rules(world: World) -> Iterator[World]:
    """The world; whatever config a test applies is removed afterwards."""
    keep = world.config.checkpoint()
    yield world
    world.config.clear(keep)
    world.config.drained()
    world.sync_policy()
    world.redis.flush()


def call(client: Proxy, path: str = "/", *, host: str = "ratings", port: int = 9080, **headers: str
         ) -> httpx.Response:
    return via_http_proxy(f"{client.bind_address}:15001").get(f"http://{host}:{port}{path}", headers=headers)


def check_transport(proxy: Proxy) -> set[str]:
    """How the proxy's ext_authz filters reach the policy service: http_service, grpc_service."""
    found: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, dict):
            if str(value.get("@type", "")).endswith(".ext_authz.v3.ExtAuthz"):
                found.update(kind for kind in ("http_service", "grpc_service") if kind in value)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(proxy.admin.config_dump())
    return found


def filters(proxy: Proxy) -> list[str]:
    """The HTTP filters of the proxy's inbound listeners, in order."""
    dump = proxy.admin.config_dump()
    found: list[str] = []
    for config in dump["configs"]:
        for listener in config.get("dynamic_listeners", []):
            active = listener.get("active_state", {}).get("listener", {})
            if active.get("name") == f"{proxy.bind_address}_15001":  # outbound
                continue
            for chain in active.get("filter_chains", []):
                for network in chain.get("filters", []):
                    for http in network.get("typed_config", {}).get("http_filters", []):
                        found.append(http["name"])
    return found


DENY_V2 = """\
apiVersion: config.istio.io/v1alpha2
kind: denier
metadata: {name: denyv2handler, namespace: default}
spec:
  status: {code: 7, message: Not allowed}
---
apiVersion: config.istio.io/v1alpha2
kind: checknothing
metadata: {name: denyv2request, namespace: default}
spec:
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: denyv2, namespace: default}
spec:
  match: >-
    destination.labels["app"] == "ratings" && source.labels["app"]=="productpage"
    && source.labels["version"] == "v2"
  actions:
  - handler: denyv2handler.denier
    instances: [denyv2request.checknothing]
"""


def test_no_rule_means_no_filter_and_no_hop(rules: World) -> None:
    assert "istio.mixer.check" not in filters(rules.ratings)
    before = rules.policy.metric("policy_checks_total")
    assert call(rules.v1).status_code == 200
    assert rules.policy.metric("policy_checks_total") == before


def test_denier_answers_with_its_status_and_message(rules: World) -> None:
    rules.apply("deny", DENY_V2)
    # Only the workload the rule can reach gets the filter.
    assert "istio.mixer.check" in filters(rules.ratings)
    assert "istio.mixer.check" not in filters(rules.details)
    # The registry entry has an http-check port, and a 403 survives HTTP.
    assert check_transport(rules.ratings) == {"http_service"}
    denied = call(rules.v2)
    assert denied.status_code == 403
    assert denied.text == "PERMISSION_DENIED:denyv2handler.denier.default:Not allowed"
    assert call(rules.v1).status_code == 200
    assert call(rules.v2, host="details", port=9081).status_code == 200


WHITELIST = """\
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: whitelist, namespace: default}
spec:
  compiledAdapter: listchecker
  params:
    overrides: ["v1"]
    blacklist: false
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: appversion, namespace: default}
spec:
  compiledTemplate: listentry
  params:
    value: source.labels["version"]
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: checkversion, namespace: default}
spec:
  match: destination.labels["app"] == "ratings"
  actions:
  - handler: whitelist
    instances: [appversion]
"""


def test_whitelist_by_version_with_the_generic_kinds(rules: World) -> None:
    rules.apply("whitelist", WHITELIST)
    assert call(rules.v1).status_code == 200
    denied = call(rules.v2)
    assert denied.status_code == 404
    assert denied.text == "NOT_FOUND:whitelist.handler.default:v2 is not whitelisted"


def list_rule(name: str, params: str, value: str, match: str = 'destination.labels["app"] == "ratings"') -> str:
    return f"""\
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {{name: {name}, namespace: default}}
spec:
  compiledAdapter: listchecker
  params: {params}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {{name: {name}-entry, namespace: default}}
spec:
  compiledTemplate: listentry
  params: {{value: '{value}'}}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {{name: {name}, namespace: default}}
spec:
  match: '{match}'
  actions: [{{handler: {name}, instances: [{name}-entry]}}]
"""


def test_blacklist_of_ip_addresses(rules: World) -> None:
    rules.apply("ips", list_rule("badips", f'{{entryType: IP_ADDRESSES, blacklist: true, overrides: ["{V2_IP}/32"]}}',
                                 "source.ip"))
    assert call(rules.v1).status_code == 200
    denied = call(rules.v2)
    assert (denied.status_code, denied.text) == (403,
                                                 f"PERMISSION_DENIED:badips.handler.default:{V2_IP} is blacklisted")


def test_regex_and_case_insensitive_lists(rules: World) -> None:
    rules.apply("lists", list_rule("paths", '{entryType: REGEX, overrides: ["/public/.*", "/health"]}', "request.path")
                + "---\n" + list_rule("users", '{entryType: CASE_INSENSITIVE_STRINGS, overrides: [Alice, bob]}',
                                      'request.headers["x-user"] | "nobody"'))
    assert call(rules.v1, "/public/a", **{"x-user": "ALICE"}).status_code == 200
    assert call(rules.v1, "/health", **{"x-user": "Bob"}).status_code == 200
    # REGEX matches whole values: /healthz is not /health.
    assert call(rules.v1, "/healthz", **{"x-user": "bob"}).status_code == 404
    assert call(rules.v1, "/public/a", **{"x-user": "carol"}).text == \
        "NOT_FOUND:users.handler.default:carol is not whitelisted"
    assert call(rules.v1, "/public/a").text == "NOT_FOUND:users.handler.default:nobody is not whitelisted"


def test_provider_list_is_fetched_refreshed_and_expires(rules: World) -> None:
    rules.lists.lines = ["alice"]
    rules.lists.status = 200
    params = f'{{providerUrl: "{rules.lists.url}", refreshInterval: 1s, ttl: 3s, cachingInterval: 1s}}'
    rules.apply("provider", list_rule("fetched", params, 'request.headers["x-user"]'))
    # Its 503 when the list is gone would be a failure to check over HTTP, not a denial.
    assert check_transport(rules.ratings) == {"grpc_service"}
    wait_until(lambda: call(rules.v1, **{"x-user": "alice"}).status_code == 200, timeout=10,
               what="the fetched list to let alice in")
    assert call(rules.v1, **{"x-user": "bob"}).status_code == 404
    rules.lists.lines = ["bob"]
    wait_until(lambda: call(rules.v1, **{"x-user": "bob"}).status_code == 200, timeout=10,
               what="the refreshed list to let bob in")
    assert call(rules.v1, **{"x-user": "alice"}).status_code == 404
    # The provider fails: the last list holds until its ttl, then checks fail (closed).
    rules.lists.status = 500
    wait_until(lambda: call(rules.v1, **{"x-user": "bob"}).status_code == 503, timeout=15,
               what="the list to expire after its ttl")
    rules.lists.status = 200
    wait_until(lambda: call(rules.v1, **{"x-user": "bob"}).status_code == 200, timeout=10,
               what="the list to come back")


# One rule per operator: a request with `x-case: <name>` is denied (with the rule's name
# in the body) exactly when the rule's expression holds.
OPERATORS = {
    "equals": ('request.headers["x-a"] == "yes"', {"x-a": "yes"}, {"x-a": "no"}),
    "not-equals": ('request.headers["x-a"] != "yes"', {"x-a": "no"}, {"x-a": "yes"}),
    "and": ('request.headers["x-a"] == "1" && request.headers["x-b"] == "2"', {"x-a": "1", "x-b": "2"},
            {"x-a": "1", "x-b": "3"}),
    "or": ('request.headers["x-a"] == "1" || request.headers["x-b"] == "2"', {"x-b": "2"}, {"x-a": "2"}),
    "not": ('!(request.headers["x-a"] == "keep")', {"x-a": "drop"}, {"x-a": "keep"}),
    "default": ('(request.headers["x-missing"] | "fallback") == "fallback"', {}, {"x-missing": "set"}),
    "index": ('source.labels["version"] == "v1"', {}, None),
    "match": ('match(request.path, "/admin/*")', {"path": "/admin/users"}, {"path": "/user/admin"}),
    "startswith": ('request.path.startsWith("/api")', {"path": "/api/v1"}, {"path": "/v1/api"}),
    "endswith": ('request.path.endsWith(".json")', {"path": "/a.json"}, {"path": "/a.json/b"}),
    "matches": ('"^/v[0-9]+/items$".matches(request.path)', {"path": "/v2/items"}, {"path": "/vx/items"}),
    "ip": (f'source.ip == ip("{V1_IP}")', {}, None),
    "email": ('email(request.headers["x-email"]) == email("ops@example.com")', {"x-email": "ops@EXAMPLE.com"},
              {"x-email": "dev@example.com"}),
    "dnsname": ('dnsName(request.headers["x-host"]) == dnsName("ratings.default.svc.cluster.local")',
                {"x-host": "Ratings.Default.svc.cluster.local."}, {"x-host": "details.default.svc.cluster.local"}),
    "conditional": ('conditional(request.headers["x-a"] == "1", "deny", "allow") == "deny"', {"x-a": "1"},
                    {"x-a": "2"}),
    "tolower": ('toLower(request.headers["x-a"]) == "shout"', {"x-a": "SHOUT"}, {"x-a": "whisper"}),
    "size": ('size(request.headers["x-a"]) > 5', {"x-a": "longer"}, {"x-a": "short"}),
    # What an HTTP check learns beyond the headers, from Envoy's additions and the request line.
    "host": ('request.host == "ratings:9080" && source.labels["version"] == "v1"', {}, None),
    "useragent": ('request.useragent == "probe/1"', {"user-agent": "probe/1"}, {"user-agent": "probe/2"}),
    "destination": ('destination.port == 9080 && destination.workload.name == "ratings-v1" '
                    '&& source.labels["version"] == "v1"', {}, None),
}


def operator_rules() -> str:
    documents = []
    for name, (expression, _, _) in OPERATORS.items():
        documents.append(f"""\
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {{name: op-{name}, namespace: default}}
spec:
  compiledAdapter: denier
  params: {{status: {{code: 7, message: {name}}}, validDuration: 0s}}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {{name: op-{name}, namespace: default}}
spec: {{compiledTemplate: checknothing}}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {{name: op-{name}, namespace: default}}
spec:
  match: '(request.headers["x-case"] | "") == "{name}" && {expression}'
  actions: [{{handler: op-{name}, instances: [op-{name}]}}]
""")
    return "---\n".join(documents)


def test_every_expression_operator_through_envoy(rules: World) -> None:
    rules.apply("operators", operator_rules())
    failures = []
    for name, (_, holds, fails) in OPERATORS.items():
        cases = [(rules.v1, holds, 403)] + ([(rules.v1, fails, 200)] if fails is not None else [(rules.v2, {}, 200)])
        for client, given, expected in cases:
            headers = {"x-case": name, **given}
            path = headers.pop("path", "/")
            answer = call(client, path, **headers)
            if answer.status_code != expected or (expected == 403 and not answer.text.endswith(f":{name}")):
                failures.append(f"{name} {given}: {answer.status_code} {answer.text!r}")
    assert failures == []


def test_repeated_checks_are_answered_from_the_cache(rules: World) -> None:
    rules.apply("deny", DENY_V2)
    cached = rules.policy.metric("policy_checks_total", cached="true")
    for _ in range(10):
        assert call(rules.v1).status_code == 200
    # The first check of this request shape may be evaluated; the rest were cache hits.
    assert rules.policy.metric("policy_checks_total", cached="true") >= cached + 9
    assert rules.policy.metric("policy_check_cache_hit_rate") > 0


def mizzenctl(world: World, *args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tools.mizzenctl", *args, "--galley", world.config.galley.api,
                           "--token", "s3cret"], check=False, input=stdin, capture_output=True, text=True, timeout=60)


def test_galley_refuses_a_rule_with_a_bad_expression_and_the_old_rule_holds(rules: World) -> None:
    rules.apply("deny", DENY_V2)
    typo = DENY_V2.replace('source.labels["version"]', 'sourc.labels["version"]').replace("name: denyv2,",
                                                                                       "name: denyv2-typo,")
    refused = mizzenctl(rules, "apply", "-f", "-", stdin=typo)
    try:
        assert refused.returncode == 1
        assert "rule default/denyv2-typo: spec.match: position" in refused.stderr
        assert "unknown attribute `sourc.labels` (did you mean `source.labels`?)" in refused.stderr
        assert call(rules.v2).status_code == 403
    finally:
        # kubectl's semantics: the file's valid documents (the handler and the instance) were
        # stored through the API beside the directory's copies; they go too, or they would
        # outlive the directory's file.
        mizzenctl(rules, "delete", "-f", "-", stdin=typo)


def quota_config(kind: str, handler: str) -> str:
    """Istio's rate-limit task, scaled to a test: 3 requests per minute to ratings, 1 for
    productpage-v2's, counted by `handler`."""
    return f"""{handler}
---
apiVersion: config.istio.io/v1alpha2
kind: quota
metadata: {{name: requestcount, namespace: istio-system}}
spec:
  dimensions:
    source: source.labels["app"] | "unknown"
    sourceVersion: source.labels["version"] | "unknown"
    destination: destination.labels["app"] | destination.service.name | "unknown"
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {{name: quota, namespace: istio-system}}
spec:
  actions:
  - handler: handler.{kind}
    instances: [requestcount.quota]
---
apiVersion: config.istio.io/v1alpha2
kind: QuotaSpec
metadata: {{name: request-count, namespace: istio-system}}
spec:
  rules: [{{quotas: [{{charge: 1, quota: requestcount}}]}}]
---
apiVersion: config.istio.io/v1alpha2
kind: QuotaSpecBinding
metadata: {{name: request-count, namespace: istio-system}}
spec:
  quotaSpecs: [{{name: request-count, namespace: istio-system}}]
  services: [{{name: ratings, namespace: default}}]
"""


def memquota() -> str:
    return quota_config("memquota", """\
apiVersion: config.istio.io/v1alpha2
kind: memquota
metadata: {name: handler, namespace: istio-system}
spec:
  quotas:
  - name: requestcount.quota.istio-system
    maxAmount: 3
    validDuration: 60s
    overrides:
    - dimensions: {destination: ratings, sourceVersion: v2}
      maxAmount: 1""")


def redisquota(algorithm: str, redis: RedisServer) -> str:
    bucket = "    bucketDuration: 1s\n" if algorithm == "ROLLING_WINDOW" else ""
    return quota_config("redisquota", f"""\
apiVersion: config.istio.io/v1alpha2
kind: redisquota
metadata: {{name: handler, namespace: istio-system}}
spec:
  redisServerUrl: {redis.address}
  connectionPoolSize: 4
  quotas:
  - name: requestcount.quota.istio-system
    maxAmount: 3
    validDuration: 60s
{bucket}    rateLimitAlgorithm: {algorithm}
    overrides:
    - dimensions: {{destination: ratings, sourceVersion: v2}}
      maxAmount: 1""")


def statuses(client: Proxy, count: int, **kwargs: object) -> list[int]:
    return [call(client, **kwargs).status_code for _ in range(count)]  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["memquota", "redisquota-fixed", "redisquota-rolling"])
def test_quota_limits_requests_with_overrides_by_dimension(rules: World, kind: str) -> None:
    config = {"memquota": memquota, "redisquota-fixed": lambda: redisquota("FIXED_WINDOW", rules.redis),
              "redisquota-rolling": lambda: redisquota("ROLLING_WINDOW", rules.redis)}[kind]()
    rules.apply("quota", config)
    assert "istio.mixer.quota" in filters(rules.ratings)
    assert "istio.mixer.quota" not in filters(rules.details)
    assert statuses(rules.v1, 5) == [200, 200, 200, 429, 429]
    assert statuses(rules.v2, 2) == [200, 429]
    # Not bound to details: no limit there.
    assert statuses(rules.v1, 5, host="details", port=9081) == [200] * 5


def test_two_replicas_share_one_redisquota_limit(rules: World) -> None:
    second = rules.mesh.policy(name="policy-b", host=POLICY_B_IP, grpc_port=rules.policy.grpc_port,
                               http_check_port=rules.policy.http_check_port)
    try:
        # Round robin, so six calls reach both replicas (pilot's default, LEAST_REQUEST,
        # picks at random between idle hosts: all six on one replica about one run in 32).
        rules.config.apply("policy-service", rules.policy.service_entry(POLICY_A_IP, POLICY_B_IP)
                           + ROUND_ROBIN_TO_POLICY)
        rules.apply("quota", redisquota("FIXED_WINDOW", rules.redis))
        rules.sync_policy(rules.policy, second)
        decisions = rules.policy.metric("policy_quota_decisions_total"), second.metric("policy_quota_decisions_total")
        assert statuses(rules.v1, 6) == [200, 200, 200, 429, 429, 429]
        # Envoy balanced the quota calls over both replicas, and they counted together.
        assert rules.policy.metric("policy_quota_decisions_total") > decisions[0]
        assert second.metric("policy_quota_decisions_total") > decisions[1]
    finally:
        rules.config.apply("policy-service", rules.policy.service_entry(POLICY_A_IP))
        second.process.stop()


def test_redisquota_counts_survive_a_policy_restart(rules: World) -> None:
    rules.apply("quota", redisquota("FIXED_WINDOW", rules.redis))
    assert statuses(rules.v1, 2) == [200, 200]
    rules.policy.process.stop()
    rules.restart_policy()
    rules.sync_policy()
    assert statuses(rules.v1, 2) == [200, 429]


def test_redis_down_fails_closed_then_open_and_recovers(rules: World) -> None:
    rules.apply("quota", redisquota("FIXED_WINDOW", rules.redis))
    assert call(rules.v1).status_code == 200
    rules.redis.process.stop()
    try:
        closed = call(rules.v1)
        assert closed.status_code == 503
        rules.apply("mesh", mesh_config(fail_open=True))
        assert statuses(rules.v1, 5) == [200] * 5
    finally:
        rules.apply("mesh", mesh_config())
        rules.redis = start_redis(rules.group, rules.base / "redis", port=rules.redis.port)
    # The counts went with the old server; the limit holds again on the new one.
    wait_until(lambda: call(rules.v1).status_code == 200, timeout=15, what="quota decisions to resume")
    assert statuses(rules.v1, 4)[-1] == 429


def test_policy_down_fails_closed_or_open_per_workload_and_checks_resume(rules: World) -> None:
    rules.apply("deny", DENY_V2 + "---\n" + DENY_V2.replace("ratings", "details").replace("denyv2", "denyv2d"))
    assert call(rules.v2, host="details", port=9081).status_code == 403
    rules.policy.process.stop()
    try:
        # ratings fails closed (the mesh's policyCheckFailOpen: false) ...
        assert call(rules.v1).status_code == 503
        # ... details is annotated policy.istio.io/check: allow-on-error.
        assert call(rules.v2, host="details", port=9081).status_code == 200
    finally:
        rules.restart_policy()
    rules.sync_policy()
    wait_until(lambda: call(rules.v1).status_code == 200, timeout=15, what="checks to resume")
    assert call(rules.v2).status_code == 403


def test_authorization_policy_custom_asks_the_policy_service(rules: World) -> None:
    rules.apply("custom", """\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: default}
spec:
  selector: {matchLabels: {app: ratings}}
  action: CUSTOM
  provider: {name: mizzen-policy}
  rules: [{to: [{operation: {paths: ["/custom/*"]}}]}]
---
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: nocustom, namespace: default}
spec:
  compiledAdapter: denier
  params: {status: {code: 7, message: custom says no}}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: nocustom, namespace: default}
spec: {compiledTemplate: checknothing}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: nocustom, namespace: default}
spec:
  match: request.path.startsWith("/custom/") && source.labels["version"] == "v2"
  actions: [{handler: nocustom, instances: [nocustom]}]
""")
    # The Mixer rule also puts the check filter on ratings, after CUSTOM's: count the calls.
    checks = rules.policy.metric("policy_checks_total")
    denied = call(rules.v2, "/custom/x")
    assert (denied.status_code, denied.text) == (403, "PERMISSION_DENIED:nocustom.handler.default:custom says no")
    assert rules.policy.metric("policy_checks_total") == checks + 1  # CUSTOM's; it denied
    assert call(rules.v1, "/custom/x").status_code == 200
    assert rules.policy.metric("policy_checks_total") == checks + 3  # CUSTOM's and the check filter's
    assert call(rules.v2, "/other").status_code == 200
    assert rules.policy.metric("policy_checks_total") == checks + 4  # the check filter's only


def test_redisquota_takes_more_decisions_at_once_than_its_pool_has_connections(rules: World) -> None:
    """Sixteen decisions in flight on a pool of four: each waits its turn, none fails."""
    rules.apply("quota", redisquota("FIXED_WINDOW", rules.redis).replace("maxAmount: 3", "maxAmount: 1000"))

    async def decide() -> list[int]:
        async with grpc.aio.insecure_channel(rules.policy.address) as channel:
            stub = rls_pb2_grpc.RateLimitServiceStub(channel)
            descriptor = ratelimit_pb2.RateLimitDescriptor(entries=[
                ratelimit_pb2.RateLimitDescriptor.Entry(key="quota", value="requestcount"),
                ratelimit_pb2.RateLimitDescriptor.Entry(key="destination.workload", value="ratings-v1.default")])
            request = rls_pb2.RateLimitRequest(domain="mizzen", descriptors=[descriptor])
            answers = await asyncio.gather(*(stub.ShouldRateLimit(request) for _ in range(16)))
            return [answer.overall_code for answer in answers]

    assert asyncio.run(decide()) == [rls_pb2.RateLimitResponse.OK] * 16
