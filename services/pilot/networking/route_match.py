"""VirtualService HTTPMatchRequest -> Envoy RouteMatch, as Istio's TranslateRouteMatch."""

from __future__ import annotations

from typing import Any

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.type.matcher.v3 import regex_pb2, string_pb2
from google.protobuf import wrappers_pb2


def string_matcher(match: dict[str, Any]) -> string_pb2.StringMatcher:
    """Istio's StringMatch (exact, prefix or RE2 regex) as Envoy's StringMatcher."""
    if "exact" in match:
        return string_pb2.StringMatcher(exact=match["exact"])
    if "prefix" in match:
        return string_pb2.StringMatcher(prefix=match["prefix"])
    return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=match.get("regex", "")))


def is_present_match(match: dict[str, Any] | None) -> bool:
    """An empty StringMatch, or the regex `*` (not RE2; Istio reads it as "any value"),
    means "present"."""
    return not match or match == {"regex": "*"}


def header_matcher(name: str, match: dict[str, Any] | None) -> rc.HeaderMatcher:
    matcher = rc.HeaderMatcher(name=name)
    if is_present_match(match):
        matcher.present_match = True
    else:
        assert match is not None
        matcher.string_match.CopyFrom(string_matcher(match))
    return matcher


def _without_header(name: str, match: dict[str, Any] | None) -> rc.HeaderMatcher:
    matcher = header_matcher(name, match)
    matcher.invert_match = True
    if not is_present_match(match):
        # Envoy never matches an absent header against a string, inverted or not; Istio's
        # `withoutHeaders: {x: {exact: v}}` must also match requests that lack `x`.
        matcher.treat_missing_header_as_empty = True
    return matcher


def query_matcher(name: str, match: dict[str, Any] | None) -> rc.QueryParameterMatcher:
    matcher = rc.QueryParameterMatcher(name=name)
    if is_present_match(match):
        matcher.present_match = True
    else:
        assert match is not None
        matcher.string_match.CopyFrom(string_matcher(match))
    return matcher


def route_match(match: dict[str, Any] | None) -> rc.RouteMatch:
    result = rc.RouteMatch(prefix="/")
    if match is None:
        return result
    headers = [header_matcher(name, m) for name, m in match.get("headers", {}).items()]
    headers += [_without_header(name, m) for name, m in match.get("withoutHeaders", {}).items()]
    headers.sort(key=lambda h: h.name)
    uri = match.get("uri")
    if uri is not None:
        if "exact" in uri:
            result.path = uri["exact"]
        elif "prefix" in uri:
            result.prefix = uri["prefix"]
        elif "regex" in uri:
            result.safe_regex.CopyFrom(regex_pb2.RegexMatcher(regex=uri["regex"]))
    result.case_sensitive.CopyFrom(wrappers_pb2.BoolValue(value=not match.get("ignoreUriCase", False)))
    for pseudo, field in ((":method", "method"), (":authority", "authority"), (":scheme", "scheme")):
        if field in match:
            headers.append(header_matcher(pseudo, match[field]))
    result.headers.extend(headers)
    result.query_parameters.extend(query_matcher(name, m) for name, m in sorted(match.get("queryParams", {}).items()))
    return result


def is_catch_all(route: rc.Route) -> bool:
    """A route that matches every request: nothing after it in the same list is reachable."""
    match = route.match
    specifier = match.WhichOneof("path_specifier")
    if specifier == "prefix":
        path_all = match.prefix == "/"
    elif specifier == "path_separated_prefix":
        path_all = match.path_separated_prefix == "/"
    elif specifier == "safe_regex":
        path_all = match.safe_regex.regex == ".*"
    else:
        path_all = False
    return path_all and not match.headers and not match.query_parameters and not match.dynamic_metadata
