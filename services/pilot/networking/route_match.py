"""VirtualService HTTPMatchRequest -> Envoy RouteMatch."""

from __future__ import annotations

from typing import Any

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.type.matcher.v3 import regex_pb2, string_pb2
from google.protobuf import wrappers_pb2


def string_matcher(match: dict[str, Any], *, ignore_case: bool = False) -> string_pb2.StringMatcher:
    if "exact" in match:
        return string_pb2.StringMatcher(exact=match["exact"], ignore_case=ignore_case)
    if "prefix" in match:
        return string_pb2.StringMatcher(prefix=match["prefix"], ignore_case=ignore_case)
    return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=match.get("regex", "")))


def _header(name: str, match: dict[str, Any], *, invert: bool = False) -> rc.HeaderMatcher:
    matcher = rc.HeaderMatcher(name=name, invert_match=invert)
    if not match or match == {"regex": "*"}:
        # Istio: an empty match means "header present".
        matcher.present_match = True
    else:
        matcher.string_match.CopyFrom(string_matcher(match))
    return matcher


def route_match(match: dict[str, Any] | None) -> rc.RouteMatch:
    result = rc.RouteMatch()
    if match is None:
        result.prefix = "/"
        return result
    uri = match.get("uri")
    ignore_case = bool(match.get("ignoreUriCase"))
    if uri is None:
        result.prefix = "/"
    elif "exact" in uri:
        result.path = uri["exact"]
    elif "prefix" in uri:
        result.prefix = uri["prefix"]
    else:
        result.safe_regex.CopyFrom(regex_pb2.RegexMatcher(regex=uri.get("regex", "")))
    if ignore_case:
        result.case_sensitive.CopyFrom(wrappers_pb2.BoolValue(value=False))
    for pseudo, field in ((":scheme", "scheme"), (":method", "method"), (":authority", "authority")):
        if field in match:
            result.headers.append(_header(pseudo, match[field]))
    for name, header in sorted(match.get("headers", {}).items()):
        result.headers.append(_header(name.lower(), header))
    for name, header in sorted(match.get("withoutHeaders", {}).items()):
        result.headers.append(_header(name.lower(), header, invert=True))
    for name, param in sorted(match.get("queryParams", {}).items()):
        matcher = rc.QueryParameterMatcher(name=name)
        if not param:
            matcher.present_match = True
        else:
            matcher.string_match.CopyFrom(string_matcher(param))
        result.query_parameters.append(matcher)
    return result
