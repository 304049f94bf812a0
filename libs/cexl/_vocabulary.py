"""Istio's attribute vocabulary (the names an expression may read, with their types), and the
frozen, hashable mapping that compiled expressions are cached against.

The vocabulary is the union of the two attribute manifests Istio 1.1's Helm chart installs
(`istioproxy` and `kubernetes`, install/kubernetes/helm/istio/charts/mixer/templates/config.yaml)
and the attribute-vocabulary reference page of istio.io, deprecated names included: a config
written against any of them must type-check.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from libs.cexl._types import ValueType

_S, _I, _B = ValueType.STRING, ValueType.INT64, ValueType.BOOL
_T, _D, _IP, _MAP = ValueType.TIMESTAMP, ValueType.DURATION, ValueType.IP_ADDRESS, ValueType.STRING_MAP


def _peer(prefix: str) -> dict[str, ValueType]:
    """What source.* and destination.* share."""
    names = {"uid": _S, "ip": _IP, "port": _I, "labels": _MAP, "metadata": _MAP, "name": _S, "namespace": _S,
             "principal": _S, "owner": _S, "workload.uid": _S, "workload.name": _S, "workload.namespace": _S,
             "user": _S, "serviceAccount": _S, "domain": _S}
    return {f"{prefix}.{name}": value_type for name, value_type in names.items()}


_ISTIO_1_1: dict[str, ValueType] = {
    **_peer("source"),
    "source.service": _S,
    "source.services": _S,
    **_peer("destination"),
    "destination.container.name": _S,
    "destination.container.image": _S,
    "destination.service": _S,
    "destination.service.host": _S,
    "destination.service.uid": _S,
    "destination.service.name": _S,
    "destination.service.namespace": _S,
    "origin.ip": _IP,
    "origin.uid": _S,
    "origin.user": _S,
    "request.headers": _MAP,
    "request.id": _S,
    "request.path": _S,
    "request.url_path": _S,
    "request.query_params": _MAP,
    "request.host": _S,
    "request.method": _S,
    "request.reason": _S,
    "request.referer": _S,
    "request.scheme": _S,
    "request.size": _I,
    "request.total_size": _I,
    "request.time": _T,
    "request.useragent": _S,
    "request.auth.principal": _S,
    "request.auth.audiences": _S,
    "request.auth.presenter": _S,
    "request.auth.claims": _MAP,
    "request.auth.raw_claims": _S,
    "request.api_key": _S,
    "response.headers": _MAP,
    "response.size": _I,
    "response.total_size": _I,
    "response.time": _T,
    "response.duration": _D,
    "response.code": _I,
    "response.grpc_status": _S,
    "response.grpc_message": _S,
    "connection.id": _S,
    "connection.event": _S,
    "connection.received.bytes": _I,
    "connection.received.bytes_total": _I,
    "connection.sent.bytes": _I,
    "connection.sent.bytes_total": _I,
    "connection.duration": _D,
    "connection.mtls": _B,
    "connection.requested_server_name": _S,
    "context.protocol": _S,
    "context.time": _T,
    "context.timestamp": _T,
    "context.reporter.kind": _S,
    "context.reporter.uid": _S,
    "context.reporter.local": _B,
    "context.proxy_error_code": _S,
    "api.service": _S,
    "api.version": _S,
    "api.operation": _S,
    "api.protocol": _S,
    "check.error_code": _I,
    "check.error_message": _S,
    "check.cache_hit": _B,
    "quota.cache_hit": _B,
}


class FrozenVocabulary(Mapping[str, ValueType]):
    """An immutable attribute vocabulary that hashes, so compiled expressions can be cached
    per (expression, vocabulary)."""

    __slots__ = ("_hash", "_types")

    def __init__(self, types: Mapping[str, ValueType]) -> None:
        for name, value_type in types.items():
            if not isinstance(name, str) or not isinstance(value_type, ValueType):
                raise TypeError(f"a vocabulary maps attribute names to ValueType, not {name!r}: {value_type!r}")
        self._types = dict(types)
        self._hash = hash(frozenset(self._types.items()))

    def __getitem__(self, name: str) -> ValueType:
        return self._types[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._types)

    def __len__(self) -> int:
        return len(self._types)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenVocabulary):
            return self._hash == other._hash and self._types == other._types
        return isinstance(other, Mapping) and self._types == dict(other.items())

    def __repr__(self) -> str:
        return f"FrozenVocabulary({len(self._types)} attributes)"


def freeze(vocabulary: Mapping[str, ValueType]) -> FrozenVocabulary:
    """`vocabulary` as a FrozenVocabulary (itself when it already is one)."""
    return vocabulary if isinstance(vocabulary, FrozenVocabulary) else FrozenVocabulary(vocabulary)


VOCABULARY: Mapping[str, ValueType] = FrozenVocabulary(_ISTIO_1_1)
