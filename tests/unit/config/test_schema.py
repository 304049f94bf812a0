"""The schema walk: unknown fields, types, snake_case aliases, enums, durations, oneofs."""

from __future__ import annotations

from typing import Any

import pytest

from libs.config import FieldError
from libs.config.schema import (
    DURATION,
    INT32,
    INT64,
    STRING,
    UINT32,
    Enum,
    ListOf,
    MapOf,
    Message,
    Ref,
    normalise,
    workloads,
)
from libs.config.schema import networking as net
from libs.config.schema import security as sec
from tests.unit.config.cases import parse


def walk(value: Any, schema: Any) -> tuple[Any, list[FieldError]]:
    errors: list[FieldError] = []
    return normalise(value, schema, "spec", errors), errors


def test_unknown_field_is_rejected_with_its_path_and_message_name() -> None:
    _, errors = walk({"hosts": ["a"], "hostz": ["b"]}, net.VIRTUAL_SERVICE)
    assert errors == [FieldError("spec.hostz", "unknown field in VirtualService")]


def test_wrong_types_are_reported_each() -> None:
    _, errors = walk({"hosts": "a", "http": [{"timeout": 5, "retries": {"attempts": "x"}}]}, net.VIRTUAL_SERVICE)
    assert [str(e) for e in errors] == [
        "spec.hosts: must be a list, not string",
        "spec.http[0].timeout: must be a duration string such as 1s or 100ms, not number",
        "spec.http[0].retries.attempts: must be an integer, not string",
    ]


def test_snake_case_aliases_normalise_to_json_names() -> None:
    spec, errors = walk({"export_to": ["."], "http": [{"cors_policy": {"allow_origins": [{"exact": "a"}]},
                                                       "route": [{"destination": {"host": "a"}}]}]},
                        net.VIRTUAL_SERVICE)
    assert errors == []
    assert spec == {"exportTo": ["."], "http": [{"corsPolicy": {"allowOrigins": [{"exact": "a"}]},
                                                 "route": [{"destination": {"host": "a"}}]}]}


def test_a_field_and_its_alias_together_are_rejected() -> None:
    _, errors = walk({"exportTo": ["."], "export_to": ["*"]}, net.VIRTUAL_SERVICE)
    assert errors[0].path == "spec.export_to"
    assert "set twice" in errors[0].reason


def test_deprecated_snake_case_json_names_are_accepted() -> None:
    """Istio's CRDs list `mirror_percent` and `jwks_uri` as well as the camelCase names."""
    spec, errors = walk({"mirror_percent": 5}, net.HTTP_ROUTE)
    assert (spec, errors) == ({"mirrorPercent": 5}, [])
    spec, errors = walk({"jwks_uri": "https://a/jwks"}, sec.JWT_RULE)
    assert (spec, errors) == ({"jwksUri": "https://a/jwks"}, [])


@pytest.mark.parametrize(("value", "expected"), [
    ("STRICT", "STRICT"),
    (3, "STRICT"),  # protobuf JSON also accepts an enum's number
    (0, "UNSET"),
])
def test_enums_by_name_or_number(value: Any, expected: str) -> None:
    spec, errors = walk({"mode": value}, sec.MUTUAL_TLS)
    assert (spec, errors) == ({"mode": expected}, [])


@pytest.mark.parametrize(("value", "reason"), [
    (7, "7 is not a PeerAuthentication.MutualTLS.Mode value"),
    ("strict", "'strict' is not one of UNSET, DISABLE, PERMISSIVE, STRICT"),
    (True, "must be one of UNSET, DISABLE, PERMISSIVE, STRICT"),
])
def test_bad_enum_values(value: Any, reason: str) -> None:
    _, errors = walk({"mode": value}, sec.MUTUAL_TLS)
    assert errors == [FieldError("spec.mode", reason)]


@pytest.mark.parametrize(("text", "canonical"), [
    ("1s", "1s"), ("100ms", "0.1s"), ("0.100s", "0.1s"), ("1m30s", "90s"), ("1h", "3600s"), ("1.5s", "1.5s"),
    ("250us", "0.00025s"), ("0", "0s"), ("2h45m", "9900s"),
])
def test_durations_normalise_to_protobuf_json(text: str, canonical: str) -> None:
    spec, errors = walk(text, DURATION)
    assert (spec, errors) == (canonical, [])


@pytest.mark.parametrize(("text", "reason"), [
    ("10", "is not a duration"), ("1d", "is not a duration"), ("-1s", "must not be negative"),
    ("", "must be a duration string"), ("99999999999999h", "longer than protobuf's maximum"),
])
def test_bad_durations(text: str, reason: str) -> None:
    _, errors = walk(text, DURATION)
    assert len(errors) == 1 and reason in errors[0].reason


def test_oneof_allows_one_member_only() -> None:
    _, errors = walk({"exact": "a", "prefix": "b"}, net.STRING_MATCH)
    assert errors == [FieldError("spec", "only one of exact, prefix, regex may be set (found exact, prefix)")]
    assert walk({"regex": "a.*"}, net.STRING_MATCH)[1] == []


def test_null_means_unset() -> None:
    spec, errors = walk({"hosts": None, "gateways": ["mesh"]}, net.VIRTUAL_SERVICE)
    assert (spec, errors) == ({"gateways": ["mesh"]}, [])


@pytest.mark.parametrize(("schema", "value", "expected", "reason"), [
    (INT32, 2**31, 2**31, "out of range for int32"),
    (UINT32, -1, -1, "out of range for uint32"),
    (INT64, "123", 123, None),  # protobuf JSON writes 64-bit integers as strings
    (UINT32, 8.0, 8, None),
    (UINT32, 8.5, 0, "must be an integer"),
    (STRING, 5, "", "must be a string, not number"),
])
def test_scalars(schema: Any, value: Any, expected: Any, reason: str | None) -> None:
    result, errors = walk(value, schema)
    assert result == expected
    assert len(errors) == (1 if reason else 0)
    assert all(reason and reason in e.reason for e in errors)


def test_integer_map_keys_from_yaml_numbers() -> None:
    spec, errors = walk({8080: {"mode": "STRICT"}, "9090": {"mode": 1}}, MapOf(sec.MUTUAL_TLS, key="uint32"))
    assert errors == []
    assert spec == {"8080": {"mode": "STRICT"}, "9090": {"mode": "DISABLE"}}


def test_string_maps_reject_other_keys() -> None:
    _, errors = walk({1: "a"}, MapOf(STRING))
    assert errors == [FieldError("spec", "map key 1 must be a string")]


def test_recursive_messages_through_refs() -> None:
    tree = Message("TestTree", {"name": STRING, "children": ListOf(Ref("TestTree"))})
    spec, errors = walk({"name": "a", "children": [{"name": "b", "children": [{"nam": "c"}]}]}, tree)
    assert errors == [FieldError("spec.children[0].children[0].nam", "unknown field in TestTree")]
    assert spec == {"name": "a", "children": [{"name": "b", "children": [{}]}]}


def test_two_different_messages_cannot_share_a_name() -> None:
    with pytest.raises(ValueError, match="defined twice"):
        Message("Percent", {"other": STRING})


def test_enum_names_appear_in_the_schema() -> None:
    assert isinstance(workloads.SERVICE_ENTRY.fields["resolution"], Enum)


def test_semantic_rules_wait_for_a_well_typed_spec() -> None:
    """With a type error, only schema errors are reported: rules assume the schema's shapes."""
    result = parse("VirtualService", "{hosts: [a], http: [{route: [{destination: {host: '*'}}], timeout: 3}]}")
    assert result.invalid[0].lines() == [
        "VirtualService default/demo: spec.http[0].timeout: must be a duration string such as 1s or 100ms, not number"]


def test_all_errors_of_a_resource_are_reported_at_once() -> None:
    result = parse("DestinationRule", "{host: 'a b', subsets: [{name: V_1}, {name: V_1}], exportTo: ['~']}")
    paths = [error.path for error in result.invalid[0].errors]
    assert paths == ["spec.host", "spec.subsets[0].name", "spec.subsets[1].name", "spec.subsets[1].name",
                     "spec.exportTo[0]"]


def test_warnings_do_not_reject() -> None:
    result = parse("VirtualService",
                   "{hosts: [a], http: [{route: [{destination: {host: a}}], websocketUpgrade: true}]}")
    assert result.ok and len(result.resources) == 1
