"""One simulated sidecar: an ADS client that asks, parses and ACKs the way Envoy 1.40 does.

State of the world (SotW), on one `StreamAggregatedResources` stream:
- the first request is CDS, wildcard (empty `resource_names`), and alone carries the node;
- each response is parsed with Envoy's protos (each distinct resource once per worker: see
  `ParseCache`) and ACKed with its `version_info` and `nonce` and the type's current
  resource names (empty for the wildcard types);
- after a CDS response, the ACK goes first, then (if they changed) an EDS request for the
  EDS clusters received, carrying the last EDS version and nonce, as Envoy's paused EDS
  resumes after the CDS update;
- LDS is requested once every EDS cluster has its load assignment (cluster manager
  initialised), and after each LDS response the RDS names its HTTP connection managers
  name are requested the same way;
- a response that does not parse is NACKed (`error_detail`, the last accepted version);
- a stream that ends is reopened after 0.5 s, re-requesting every type with its last
  accepted version and an empty nonce, as Envoy reconnects.

Delta (incremental xDS), on one `DeltaAggregatedResources` stream, in the same order:
- CDS and LDS subscribe as wildcards (a first request naming nothing), EDS and RDS by name,
  each change one request with `resource_names_subscribe` / `_unsubscribe`;
- each response is parsed the same way, applied resource by resource (`removed_resources`
  dropped), and ACKed with its nonce alone;
- a reopened stream's first request of each type lists what the proxy holds
  (`initial_resource_versions`).

Each response is reported to `record` with the monotonic times it arrived and its ACK was
written, so the parent can time convergence across processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import grpc
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import any_pb2, struct_pb2
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2

from bench.pilot.ledger import Delivery
from libs.envoy import CLUSTER_TYPE, ENDPOINT_TYPE, HCM_TYPE, LISTENER_TYPE, ROUTE_TYPE, short_type
from libs.protowire import read_varint

ADS_METHOD = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
DELTA_ADS_METHOD = "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
RECONNECT_S = 0.5
# Envoy's gRPC client takes any size pilot sends; a full SotW CDS at scale is megabytes.
CHANNEL_OPTIONS = (
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
    ("grpc.max_send_message_length", 16 * 1024 * 1024),
    # One HTTP/2 connection per proxy, as each Envoy has its own (grpc would share one).
    ("grpc.use_local_subchannel_pool", 1),
    # HTTP/2 flow control as Envoy 1.40's xDS connection has it (its SETTINGS frame read
    # off the wire): a 16 MiB stream window and no BDP pings.  gRPC's own client pings the
    # server as data arrives, to grow its window: work for pilot no real sidecar causes.
    ("grpc.http2.lookahead_bytes", 16 * 1024 * 1024),
    ("grpc.http2.bdp_probe", 0),
)


@dataclass(frozen=True)
class ProxySpec:
    """A sidecar as its bootstrap describes it (Istio's node id and metadata keys)."""

    index: int
    pod: str
    namespace: str
    ip: str
    labels: tuple[tuple[str, str], ...]
    service_account: str = "default"
    interception: str = "REDIRECT"

    @property
    def node_id(self) -> str:
        return f"sidecar~{self.ip}~{self.pod}.{self.namespace}~{self.namespace}.svc.cluster.local"

    def node(self) -> base_pb2.Node:
        labels = dict(self.labels)
        metadata = struct_pb2.Struct()
        metadata.update({
            "NAMESPACE": self.namespace, "LABELS": labels, "INSTANCE_IPS": self.ip,
            "SERVICE_ACCOUNT": self.service_account, "WORKLOAD_NAME": self.pod,
            "INTERCEPTION_MODE": self.interception, "MESH_ID": "cluster.local", "CLUSTER_ID": "Kubernetes",
        })
        node = base_pb2.Node(id=self.node_id, cluster=f"{labels.get('app', self.pod)}.{self.namespace}",
                             metadata=metadata, user_agent_name="envoy")
        version = node.user_agent_build_version.version
        version.major_number, version.minor_number, version.patch = 1, 40, 0
        return node


class BadResponse(ValueError):
    """A response this client (like Envoy) rejects."""


# -- parsing: what Envoy learns from each type ---------------------------------------------


def rds_names(listeners: list[listener_pb2.Listener]) -> frozenset[str]:
    found: set[str] = set()
    for listener in listeners:
        chains = [*listener.filter_chains]
        if listener.HasField("default_filter_chain"):
            chains.append(listener.default_filter_chain)
        for chain in chains:
            for network_filter in chain.filters:
                if network_filter.typed_config.type_url == HCM_TYPE:
                    manager = hcm.HttpConnectionManager.FromString(network_filter.typed_config.value)
                    if manager.HasField("rds"):
                        found.add(manager.rds.route_config_name)
    return frozenset(found)


_MESSAGES: dict[str, type[Message]] = {
    CLUSTER_TYPE: cluster_pb2.Cluster, ENDPOINT_TYPE: endpoint_pb2.ClusterLoadAssignment,
    LISTENER_TYPE: listener_pb2.Listener, ROUTE_TYPE: route_pb2.RouteConfiguration,
}


@dataclass(frozen=True, slots=True)
class Facts:
    """What Envoy's subscriptions need from one resource."""

    name: str
    # An EDS cluster's service name (CDS), or the route configurations it names (LDS).
    eds: str | None = None
    rds: frozenset[str] = frozenset()


def facts(type_url: str, value: bytes) -> Facts:
    message_type = _MESSAGES.get(type_url)
    if message_type is None:
        raise BadResponse(f"unexpected type {type_url}")
    message = message_type.FromString(value)
    if type_url == CLUSTER_TYPE:
        eds = message.eds_cluster_config.service_name or message.name if message.type == cluster_pb2.Cluster.EDS \
            else None
        return Facts(message.name, eds=eds)
    if type_url == LISTENER_TYPE:
        return Facts(message.name, rds=rds_names([message]))
    if type_url == ENDPOINT_TYPE:
        return Facts(message.cluster_name)
    return Facts(message.name)


class ParseCache:
    """Facts by resource content, shared by the proxies of one worker process.

    Most resources reach hundreds of proxies byte for byte.  Envoy parses every copy, but
    the load generator shares two cores with pilot, so each distinct resource is parsed
    (with Envoy's protos) once per worker and its facts reused.  No entry is ever taken for
    a resource it was not made from:

    - a small resource is keyed by its length and Python's 64-bit hash of its bytes (no
      collision to fear from a control plane that is not trying to make one);
    - a large one (a route configuration of 1,000 virtual hosts, which every sidecar gets on
      each VirtualService change) by its length and both ends, and told apart from the
      others with those by comparing all its bytes: one copy and a memcmp cost a third of
      hashing it (~35 against ~105 us for 435 KB).  The namespaces' route configurations
      are alike at both ends, so a key holds a few of them, the last found first: an older
      version of a namespace's configuration matches the new one up to the host that
      changed, and comparing every copy held (they piled up to the byte budget) in the
      order they came took 7.6% of a worker's samples over VirtualService changes.

    The small entries are dropped past `limit` of them, the large ones past `large_bytes`."""

    def __init__(self, limit: int = 50_000, large_bytes: int = 64 << 20) -> None:
        self._entries: dict[tuple[str, int, int, bool], Facts] = {}
        self._large: dict[tuple[str, int, bool, bytes, bytes], list[tuple[bytes, Facts]]] = {}
        self._large_held = 0
        self._limit = limit
        self._large_limit = large_bytes
        self.parsed = 0

    def facts(self, type_url: str, value: bytes | memoryview, unpack: bool = False) -> Facts:
        """The facts of one resource: its Any's `value`, or (`unpack`) the whole Any."""
        if len(value) >= LARGE_RESOURCE:
            content = bytes(value)
            return self._large_facts(type_url, content, 0, len(content), unpack)
        key = (type_url, len(value), hash(value), unpack)
        found = self._entries.get(key)
        if found is None:
            found = self._parse(type_url, bytes(value), unpack)
            if len(self._entries) >= self._limit:
                self._entries.clear()
            self._entries[key] = found
        return found

    def facts_at(self, type_url: str, raw: bytes, start: int, end: int, unpack: bool = False) -> Facts:
        """`facts` of the resource at `raw[start:end]`.  A large one is compared where it
        lies, not copied out first: the copy cost as much as the comparison."""
        if end - start >= LARGE_RESOURCE:
            return self._large_facts(type_url, raw, start, end, unpack)
        return self.facts(type_url, memoryview(raw)[start:end], unpack)

    def _large_facts(self, type_url: str, raw: bytes, start: int, end: int, unpack: bool) -> Facts:
        key = (type_url, end - start, unpack, raw[start:start + ENDS], raw[end - ENDS:end])
        alike = self._large.setdefault(key, [])
        for at, (held, found) in enumerate(alike):
            # The key holds the length: a match at `start` is the whole resource.
            if raw.startswith(held, start):
                if at:
                    alike.insert(0, alike.pop(at))
                return found
        content = raw[start:end]
        found = self._parse(type_url, content, unpack)
        if self._large_held + len(content) > self._large_limit:
            self._large.clear()
            self._large_held = 0
            alike = self._large.setdefault(key, [])
        alike.insert(0, (content, found))
        self._large_held += len(content)
        return found

    def _parse(self, type_url: str, content: bytes, unpack: bool) -> Facts:
        self.parsed += 1
        return _unpacked_facts(type_url, content) if unpack else facts(type_url, content)


# Resources this large are recognised by comparing their bytes, not hashing them; `ENDS`
# bytes of each end key them.
LARGE_RESOURCE = 16 * 1024
ENDS = 64


def _unpacked_facts(type_url: str, packed: bytes) -> Facts:
    resource = any_pb2.Any.FromString(packed)
    if resource.type_url != type_url:
        raise BadResponse(f"resource of type {resource.type_url} in a {short_type(type_url)} response")
    return facts(type_url, resource.value)


def _unique(parsed: list[Facts]) -> list[Facts]:
    if len({f.name for f in parsed}) != len(parsed):
        raise BadResponse("a resource name appears twice")
    return parsed


def parse_response(response: discovery_pb2.DiscoveryResponse, cache: ParseCache) -> list[Facts]:
    parsed: list[Facts] = []
    for packed in response.resources:
        if packed.type_url != response.type_url:
            raise BadResponse(f"resource of type {packed.type_url} in a {short_type(response.type_url)} response")
        try:
            parsed.append(cache.facts(response.type_url, packed.value))
        except DecodeError as exc:
            raise BadResponse(f"cannot parse a {short_type(response.type_url)} resource: {exc}") from exc
    return _unique(parsed)


# -- reading a response: the envelope decoded, the resources left where they lie ----------

# A response with more resources than this is decoded whole by the protos: one C call
# beats a Python walk over a thousand entries.
MOST_WALKED = 8


@dataclass(frozen=True)
class Received:
    """A response as read off the wire: its envelope decoded, its resources not yet."""

    version: str
    type_url: str
    nonce: str
    count: int
    raw: bytes
    # Each resource's Any as a byte range of `raw`; with `message`, the response decoded whole.
    spans: tuple[tuple[int, int], ...] = ()
    message: discovery_pb2.DiscoveryResponse | None = None

    def facts(self, cache: ParseCache) -> list[Facts]:
        """What the proxy learns from the resources; raises BadResponse as Envoy would NACK."""
        if self.message is not None:
            return parse_response(self.message, cache)
        try:
            return _unique([cache.facts_at(self.type_url, self.raw, start, end, unpack=True)
                            for start, end in self.spans])
        except DecodeError as exc:
            raise BadResponse(f"cannot parse a {short_type(self.type_url)} resource: {exc}") from exc


def read_response(raw: bytes) -> Received:
    """`raw` read the cheap way when it carries few resources: a route configuration of
    1,000 virtual hosts is then neither decoded into the envelope nor copied out of it
    for every proxy, only hashed where it lies."""
    walked = _walk(raw)
    if walked is None:
        message = discovery_pb2.DiscoveryResponse.FromString(raw)
        return Received(message.version_info, message.type_url, message.nonce, len(message.resources), raw,
                        message=message)
    version, type_url, nonce, spans = walked
    return Received(version, type_url, nonce, len(spans), raw, spans=spans)


def _walk(raw: bytes) -> tuple[str, str, str, tuple[tuple[int, int], ...]] | None:
    """The envelope's fields (version 1, resources 2, type URL 4, nonce 5) and where each
    resource lies; None for more than MOST_WALKED resources or anything unexpected."""
    text: dict[int, bytes] = {}
    spans: list[tuple[int, int]] = []
    at, end = 0, len(raw)
    try:
        while at < end:
            key, at = read_varint(raw, at)
            if key & 7 == 0:
                _, at = read_varint(raw, at)
                continue
            if key & 7 != 2:
                return None
            length, start = read_varint(raw, at)
            at = start + length
            if at > end:
                return None
            if key >> 3 == 2:
                if len(spans) == MOST_WALKED:
                    return None
                spans.append((start, at))
            else:
                text[key >> 3] = raw[start:at]
        return text.get(1, b"").decode(), text.get(4, b"").decode(), text.get(5, b"").decode(), tuple(spans)
    except (IndexError, UnicodeDecodeError):
        return None


# -- the client ------------------------------------------------------------------------------


@dataclass
class TypeState:
    type_url: str
    # None: wildcard (CDS, LDS).
    names: frozenset[str] | None
    requested: bool = False
    version: str = ""
    nonce: str = ""
    received: set[str] = field(default_factory=set)
    # `names` as a request's `resource_names` field, encoded once per subscription (see
    # `request_bytes`), and the set it was encoded from.
    names_wire: bytes = b""
    names_wired: frozenset[str] | None = None


def rejection(message: str) -> status_pb2.Status:
    """A NACK's `error_detail`, as Envoy fills it."""
    return status_pb2.Status(code=grpc.StatusCode.INVALID_ARGUMENT.value[0], message=message)


def request_bytes(state: TypeState, *, node: base_pb2.Node | None = None, error: str | None = None) -> bytes:
    """A request for `state`'s type, serialised as Envoy's protobuf library lays it out
    (fields in number order).  Each ACK repeats the names its type subscribes to, 1,000 EDS
    clusters here: Envoy writes them in C++, but sorting and encoding them in Python for
    every ACK cost 120 us, so they are encoded once per subscription and spliced in."""
    if state.names_wired is not state.names:
        state.names_wire = discovery_pb2.DiscoveryRequest(resource_names=sorted(state.names or ())).SerializeToString()
        state.names_wired = state.names
    head = discovery_pb2.DiscoveryRequest(version_info=state.version, node=node)
    tail = discovery_pb2.DiscoveryRequest(type_url=state.type_url, response_nonce=state.nonce)
    if error is not None:
        tail.error_detail.CopyFrom(rejection(error))
    return head.SerializeToString() + state.names_wire + tail.SerializeToString()


Recorder = Callable[[Delivery], None]


class AdsClient:
    """One proxy's ADS stream, reopened until `stop` is set; the protocol's requests and
    responses are its subclass's."""

    method = ADS_METHOD

    def __init__(self, spec: ProxySpec, target: str, record: Recorder, cache: ParseCache) -> None:
        self.spec = spec
        self.target = target
        self._record = record
        self._cache = cache
        self.types = {CLUSTER_TYPE: TypeState(CLUSTER_TYPE, None), ENDPOINT_TYPE: TypeState(ENDPOINT_TYPE, frozenset()),
                      LISTENER_TYPE: TypeState(LISTENER_TYPE, None), ROUTE_TYPE: TypeState(ROUTE_TYPE, frozenset())}
        self.streams = 0
        self.errors: list[str] = []

    async def run(self, stop: asyncio.Event) -> None:
        async with grpc.aio.insecure_channel(self.target, options=CHANNEL_OPTIONS) as channel:
            # Responses come as bytes: their size is known and their arrival stamped before
            # parsing.  Requests go as bytes too (`request_bytes`).
            method = channel.stream_stream(self.method, request_serializer=None, response_deserializer=None)
            while not stop.is_set():
                try:
                    await self._stream(method)
                except grpc.aio.AioRpcError as exc:
                    if stop.is_set():
                        return
                    self.errors.append(f"{exc.code().name}: {exc.details()}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RECONNECT_S)

    async def _stream(self, method: grpc.aio.StreamStreamMultiCallable) -> None:
        call = method(wait_for_ready=True)
        self.streams += 1
        try:
            await self._open(call)
            while True:
                response = await call.read()
                if response is grpc.aio.EOF:
                    return
                await self._handle(call, response)
        finally:
            call.cancel()

    async def _open(self, call: grpc.aio.StreamStreamCall) -> None:
        raise NotImplementedError

    async def _handle(self, call: grpc.aio.StreamStreamCall, raw: bytes) -> None:
        raise NotImplementedError

    async def _follow(self, call: grpc.aio.StreamStreamCall, type_url: str, held: Iterable[Facts],
                      received: list[Facts]) -> None:
        """What Envoy asks for once it has applied a response (`held`: every resource of the
        type it now holds, `received`: the response's): EDS for its clusters, LDS once every
        EDS cluster has its endpoints (cluster manager initialised), RDS for its listeners'
        route configurations."""
        if type_url == CLUSTER_TYPE:
            eds = frozenset(f.eds for f in held if f.eds is not None)
            await self._subscribe(call, ENDPOINT_TYPE, eds)
            if not eds:
                await self._request_listeners(call)
        elif type_url == ENDPOINT_TYPE and not self.types[LISTENER_TYPE].requested:
            # Once listeners are asked for (Envoy asks once, when its cluster manager has
            # initialised), later load assignments change nothing here; checking a thousand
            # names on each was a tenth of the load tool's CPU over endpoint changes.
            state = self.types[ENDPOINT_TYPE]
            state.received.update(f.name for f in received)
            if state.names is not None and state.names <= state.received:
                await self._request_listeners(call)
        elif type_url == LISTENER_TYPE:
            await self._subscribe(call, ROUTE_TYPE, frozenset().union(*(f.rds for f in held)))

    async def _subscribe(self, call: grpc.aio.StreamStreamCall, type_url: str, names: frozenset[str]) -> None:
        raise NotImplementedError

    async def _request_listeners(self, call: grpc.aio.StreamStreamCall) -> None:
        raise NotImplementedError

    def _report(self, type_url: str, version: str, arrived: float, count: int, size: int, *,
                nacked: bool = False) -> None:
        self._record(Delivery(self.spec.index, short_type(type_url), version, arrived, time.monotonic(), count, size,
                              nacked))


class SotwClient(AdsClient):
    """A sidecar on state-of-the-world ADS."""

    async def _open(self, call: grpc.aio.StreamStreamCall) -> None:
        """A fresh stream: CDS with the node; on a reconnect, every other type Envoy watches,
        with its last accepted version and no nonce."""
        cds = self.types[CLUSTER_TYPE]
        cds.requested, cds.nonce = True, ""
        await call.write(request_bytes(cds, node=self.spec.node()))
        for state in (self.types[t] for t in (ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE)):
            if state.requested:
                state.nonce = ""
                await call.write(request_bytes(state))

    async def _handle(self, call: grpc.aio.StreamStreamCall, raw: bytes) -> None:
        arrived = time.monotonic()
        response = read_response(raw)
        state = self.types.get(response.type_url)
        if state is None:
            return
        state.nonce = response.nonce
        try:
            resources = response.facts(self._cache)
        except BadResponse as exc:
            # NACK: the last accepted version, this response's nonce, and why.
            await call.write(request_bytes(state, error=str(exc)))
            self._report(response.type_url, response.version, arrived, response.count, len(raw), nacked=True)
            return
        state.version = response.version
        await call.write(request_bytes(state))
        self._report(response.type_url, response.version, arrived, response.count, len(raw))
        # A SotW response of a wildcard type is everything the proxy holds of it.
        await self._follow(call, response.type_url, resources, resources)

    async def _subscribe(self, call: grpc.aio.StreamStreamCall, type_url: str, names: frozenset[str]) -> None:
        """Watch exactly `names` of `type_url` (EDS after CDS, RDS after LDS), as Envoy's
        resumed mux does: one request with the type's last version and nonce."""
        state = self.types[type_url]
        if state.requested and names == state.names:
            return
        state.names = names
        if not names and not state.requested:
            return
        state.requested = True
        await call.write(request_bytes(state))

    async def _request_listeners(self, call: grpc.aio.StreamStreamCall) -> None:
        state = self.types[LISTENER_TYPE]
        if not state.requested:
            state.requested = True
            await call.write(request_bytes(state))


class DeltaClient(AdsClient):
    """A sidecar on delta ADS: what it holds per type, by name and version."""

    method = DELTA_ADS_METHOD

    def __init__(self, spec: ProxySpec, target: str, record: Recorder, cache: ParseCache) -> None:
        super().__init__(spec, target, record, cache)
        self.held: dict[str, dict[str, str]] = {t: {} for t in self.types}
        # What each held CDS / LDS resource names (EDS service name, RDS names).
        self._facts: dict[str, dict[str, Facts]] = {CLUSTER_TYPE: {}, LISTENER_TYPE: {}}

    async def _open(self, call: grpc.aio.StreamStreamCall) -> None:
        """A fresh stream: CDS with the node; on a reconnect, every other type Envoy watches,
        each with what it holds."""
        await call.write(self._first_request(self.types[CLUSTER_TYPE], node=self.spec.node()))
        for state in (self.types[t] for t in (ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE)):
            if state.requested:
                await call.write(self._first_request(state))

    def _first_request(self, state: TypeState, *, node: base_pb2.Node | None = None) -> bytes:
        state.requested = True
        return discovery_pb2.DeltaDiscoveryRequest(
            node=node, type_url=state.type_url, resource_names_subscribe=sorted(state.names or ()),
            initial_resource_versions=self.held[state.type_url]).SerializeToString()

    async def _handle(self, call: grpc.aio.StreamStreamCall, raw: bytes) -> None:
        arrived = time.monotonic()
        response = discovery_pb2.DeltaDiscoveryResponse.FromString(raw)
        state = self.types.get(response.type_url)
        if state is None:
            return
        ack = discovery_pb2.DeltaDiscoveryRequest(type_url=response.type_url, response_nonce=response.nonce)
        try:
            resources = self._parse(response)
        except BadResponse as exc:
            ack.error_detail.CopyFrom(rejection(str(exc)))
            await call.write(ack.SerializeToString())
            self._report(response.type_url, response.system_version_info, arrived, len(response.resources),
                         len(raw), nacked=True)
            return
        held = self.held[response.type_url]
        facts_held = self._facts.get(response.type_url)
        for name in response.removed_resources:
            held.pop(name, None)
            if facts_held is not None:
                facts_held.pop(name, None)
        for entry, found in zip(response.resources, resources, strict=True):
            held[entry.name] = entry.version
            if facts_held is not None:
                facts_held[entry.name] = found
        await call.write(ack.SerializeToString())
        self._report(response.type_url, response.system_version_info, arrived, len(response.resources), len(raw))
        await self._follow(call, response.type_url, self._facts.get(response.type_url, {}).values(), resources)

    def _parse(self, response: discovery_pb2.DeltaDiscoveryResponse) -> list[Facts]:
        parsed: list[Facts] = []
        for entry in response.resources:
            if entry.resource.type_url != response.type_url:
                raise BadResponse(f"resource of type {entry.resource.type_url} in a "
                                  f"{short_type(response.type_url)} response")
            try:
                found = self._cache.facts(response.type_url, entry.resource.value)
            except DecodeError as exc:
                raise BadResponse(f"cannot parse a {short_type(response.type_url)} resource: {exc}") from exc
            if found.name != entry.name:
                raise BadResponse(f"resource {entry.name!r} holds {found.name!r}")
            parsed.append(found)
        return _unique(parsed)

    async def _subscribe(self, call: grpc.aio.StreamStreamCall, type_url: str, names: frozenset[str]) -> None:
        """Watch exactly `names` of `type_url`: one request naming what is new and what is not
        wanted any more, as Envoy's delta mux sends when CDS or LDS changed."""
        state = self.types[type_url]
        before = state.names or frozenset()
        if state.requested and names == before:
            return
        state.names = names
        if not names and not state.requested:
            return
        if not state.requested:
            await call.write(self._first_request(state))
            return
        for name in before - names:
            self.held[type_url].pop(name, None)
            state.received.discard(name)
        await call.write(discovery_pb2.DeltaDiscoveryRequest(
            type_url=type_url, resource_names_subscribe=sorted(names - before),
            resource_names_unsubscribe=sorted(before - names)).SerializeToString())

    async def _request_listeners(self, call: grpc.aio.StreamStreamCall) -> None:
        state = self.types[LISTENER_TYPE]
        if not state.requested:
            await call.write(self._first_request(state))
