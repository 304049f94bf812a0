"""SDS state of the world on one stream: answer, ACK, NACK, stale nonces, pushes on change."""

from __future__ import annotations

from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import any_pb2
from google.rpc import status_pb2

from libs.envoy import SECRET_TYPE
from services.agent.sds_secrets import DEFAULT, ROOTCA, SecretResource, validation_context
from services.agent.sds_stream import SdsStream


def _roots(tag: bytes) -> dict[str, SecretResource]:
    return {ROOTCA: validation_context(b"-----BEGIN CERTIFICATE-----\n" + tag + b"\n-----END CERTIFICATE-----\n")}


def _default() -> SecretResource:
    secret = secret_pb2.Secret(name=DEFAULT)
    return SecretResource(DEFAULT, "v1", any_pb2.Any(type_url=SECRET_TYPE, value=secret.SerializeToString()))


def _request(names: list[str], nonce: str = "", version: str = "", error: str = "") -> discovery_pb2.DiscoveryRequest:
    request = discovery_pb2.DiscoveryRequest(type_url=SECRET_TYPE, resource_names=names, response_nonce=nonce,
                                             version_info=version)
    if error:
        request.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
    return request


def _names(response: discovery_pb2.DiscoveryResponse) -> list[str]:
    out = []
    for packed in response.resources:
        secret = secret_pb2.Secret()
        assert packed.Unpack(secret)
        out.append(secret.name)
    return out


def test_first_request_is_answered_with_what_exists() -> None:
    stream = SdsStream("s")
    response = stream.on_request(_request([ROOTCA, DEFAULT]), _roots(b"A"))
    assert response is not None and response.type_url == SECRET_TYPE
    assert _names(response) == [ROOTCA]
    assert response.nonce == "s-1"


def test_nothing_to_say_until_the_secret_exists_then_pushed() -> None:
    stream = SdsStream("s")
    assert stream.on_request(_request([ROOTCA]), {}) is None
    response = stream.on_change(_roots(b"A"))
    assert response is not None and _names(response) == [ROOTCA]


def test_ack_then_push_only_on_changed_content() -> None:
    stream = SdsStream("s")
    first = stream.on_request(_request([ROOTCA]), _roots(b"A"))
    assert first is not None
    assert stream.on_request(_request([ROOTCA], first.nonce, first.version_info), _roots(b"A")) is None
    assert stream.acks == 1 and stream.acked == stream.sent
    assert stream.on_change(_roots(b"A")) is None, "same content: no push"
    second = stream.on_change(_roots(b"B"))
    assert second is not None and second.version_info != first.version_info and second.nonce == "s-2"


def test_nack_is_recorded_and_the_same_content_never_resent() -> None:
    stream = SdsStream("s")
    first = stream.on_request(_request([ROOTCA]), _roots(b"A"))
    assert first is not None
    assert stream.on_request(_request([ROOTCA], first.nonce, "", error="bad PEM"), _roots(b"A")) is None
    assert stream.last_nack is not None and stream.last_nack.message == "bad PEM"
    assert stream.on_change(_roots(b"A")) is None
    assert stream.on_change(_roots(b"B")) is not None


def test_stale_nonce_is_ignored() -> None:
    stream = SdsStream("s")
    first = stream.on_request(_request([ROOTCA]), _roots(b"A"))
    second = stream.on_change(_roots(b"B"))
    assert first is not None and second is not None
    assert stream.on_request(_request([ROOTCA], first.nonce, error="late NACK"), _roots(b"B")) is None
    assert stream.last_nack is None and stream.awaiting_ack


def test_ack_that_changes_names_is_answered() -> None:
    stream = SdsStream("s")
    resources = {**_roots(b"A"), DEFAULT: _default()}
    first = stream.on_request(_request([ROOTCA]), resources)
    assert first is not None
    response = stream.on_request(_request([ROOTCA, DEFAULT], first.nonce, first.version_info), resources)
    assert response is not None and _names(response) == [ROOTCA, DEFAULT]


def test_other_types_are_ignored() -> None:
    stream = SdsStream("s")
    request = _request([ROOTCA])
    request.type_url = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    assert stream.on_request(request, _roots(b"A")) is None
