"""The policies an HTTP route carries: headers, retries, faults, CORS, redirect, rewrite, mirrors."""

from __future__ import annotations

from typing import Any

from libs.config.validation import http, quantities
from libs.config.validation._checker import Checker
from libs.config.validation.destinations import destination

# Envoy redirect codes pilot can express; other 3xx codes are dropped with a log line.
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_AUTHORITY_HEADERS = (":authority", "host")


def _settable_header(check: Checker, path: str, name: str, *, request: bool) -> None:
    """Istio's rules for headers a route adds or sets: pseudo-headers are Envoy's own, except
    that a request's authority may be rewritten (checked once, in `authority_rewrite`)."""
    if not name:
        check.error(path, "header name cannot be empty")
    elif request and name.lower() in _AUTHORITY_HEADERS:
        return
    elif name.startswith(":") or name.lower() == "host":
        check.error(path, f"header {name!r} cannot be set: pseudo-headers and Host belong to the proxy")


def header_operations(check: Checker, path: str, headers: dict[str, Any]) -> None:
    for direction in ("request", "response"):
        operations = headers.get(direction, {})
        where = f"{path}.{direction}"
        for verb in ("set", "add"):
            for name, value in operations.get(verb, {}).items():
                _settable_header(check, f"{where}.{verb}[{name}]", name, request=direction == "request")
                problem = http.header_value_problem(value)
                if problem:
                    check.error(f"{where}.{verb}[{name}]", problem)
        for i, name in enumerate(operations.get("remove", [])):
            _settable_header(check, f"{where}.remove[{i}]", name, request=False)


def authority_rewrite(check: Checker, path: str, route: dict[str, Any]) -> None:
    """The authority may be rewritten in one place only: rewrite.authority or one header op."""
    sources = ["rewrite.authority"] if route.get("rewrite", {}).get("authority") else []
    request = route.get("headers", {}).get("request", {})
    for verb in ("set", "add"):
        sources += [f"headers.request.{verb}[{name}]" for name in request.get(verb, {})
                    if name.lower() in _AUTHORITY_HEADERS]
    if len(sources) > 1:
        check.error(path, f"the authority header is set more than once ({', '.join(sources)})")


def retries(check: Checker, path: str, retry: dict[str, Any]) -> None:
    attempts = retry.get("attempts", 0)
    if attempts < 0:
        check.error(f"{path}.attempts", "attempts cannot be negative")
    if attempts == 0 and any(field in retry for field in ("perTryTimeout", "retryOn", "retryRemoteLocalities")):
        check.error(path, "retry policy configured while attempts is 0 (retries disabled)")
    for field in ("perTryTimeout", "backoff"):
        if field in retry:
            quantities.duration(check, f"{path}.{field}", retry[field])
    if retry.get("retryOn"):
        http.retry_on(check, f"{path}.retryOn", retry["retryOn"])


def fault(check: Checker, path: str, injection: dict[str, Any]) -> None:
    if "delay" not in injection and "abort" not in injection:
        check.error(path, "fault injection needs an abort and/or a delay")
    if "delay" in injection:
        delay = injection["delay"]
        where = f"{path}.delay"
        if "percent" in delay:
            quantities.percent(check, f"{where}.percent", delay["percent"])
        if "percentage" in delay:
            quantities.fractional_percent(check, f"{where}.percentage.value", delay["percentage"].get("value", 0))
        if "fixedDelay" in delay:
            quantities.duration(check, f"{where}.fixedDelay", delay["fixedDelay"])
        elif "exponentialDelay" in delay:
            check.error(f"{where}.exponentialDelay", "exponentialDelay is not supported (by Istio or Mizzen)")
        else:
            # Istio accepts this and then injects no delay.
            check.warn(where, "delay without fixedDelay injects nothing")
    if "abort" in injection:
        abort = injection["abort"]
        where = f"{path}.abort"
        if "percentage" in abort:
            quantities.fractional_percent(check, f"{where}.percentage.value", abort["percentage"].get("value", 0))
        if "httpStatus" in abort:
            http.http_status(check, f"{where}.httpStatus", abort["httpStatus"])
        elif "grpcStatus" in abort:
            if abort["grpcStatus"] not in http.GRPC_STATUSES:
                check.error(f"{where}.grpcStatus", f"gRPC status {abort['grpcStatus']!r} is not supported "
                                                   "(use a name such as NOT_FOUND or UNAVAILABLE)")
        elif "http2Error" in abort:
            check.error(f"{where}.http2Error", "HTTP/2 abort fault injection is not supported")
        else:
            # Istio accepts this and then aborts nothing.
            check.warn(where, "abort without httpStatus or grpcStatus aborts nothing")


def cors(check: Checker, path: str, policy: dict[str, Any]) -> None:
    for i, origin in enumerate(policy.get("allowOrigin", [])):
        if not origin:
            check.error(f"{path}.allowOrigin[{i}]", "an allowed origin cannot be empty")
    if "allowOrigin" in policy:
        check.warn(f"{path}.allowOrigin", "deprecated: use allowOrigins (string matches)")
    for i, origin in enumerate(policy.get("allowOrigins", [])):
        where = f"{path}.allowOrigins[{i}]"
        if not any(origin.get(kind) for kind in ("exact", "prefix", "regex")):
            check.error(where, "an allowed origin needs a non-empty exact, prefix or regex")
        elif "regex" in origin:
            http.regex(check, f"{where}.regex", origin["regex"])
    for i, method in enumerate(policy.get("allowMethods", [])):
        if method not in http.METHODS:
            check.error(f"{path}.allowMethods[{i}]", f"{method!r} is not a supported HTTP method "
                                                     f"(one of {', '.join(sorted(http.METHODS))})")
    for field in ("allowHeaders", "exposeHeaders"):
        for i, name in enumerate(policy.get(field, [])):
            if name != "*":
                http.header_name(check, f"{path}.{field}[{i}]", name)
    if "maxAge" in policy:
        quantities.duration(check, f"{path}.maxAge", policy["maxAge"])
        # Access-Control-Max-Age is a number of seconds.
        quantities.whole_seconds(check, f"{path}.maxAge", policy["maxAge"])


def redirect(check: Checker, path: str, spec: dict[str, Any]) -> None:
    if not (any(spec.get(field) for field in ("uri", "authority", "scheme"))
            or "port" in spec or "derivePort" in spec):
        check.error(path, "a redirect must set uri, authority, scheme or port")
    code = spec.get("redirectCode", 0)
    if code and not 300 <= code <= 399:
        check.error(f"{path}.redirectCode", f"{code} is not a valid redirect code, it must be 3xx")
    elif code and code not in REDIRECT_CODES:
        check.warn(f"{path}.redirectCode", f"redirect code {code} is not supported by Envoy; the route is dropped "
                                           f"(use one of {', '.join(map(str, sorted(REDIRECT_CODES)))})")
    if spec.get("scheme") and spec["scheme"] not in ("http", "https"):
        check.error(f"{path}.scheme", f"redirect scheme {spec['scheme']!r} must be http or https")
    if spec.get("port", 0) > 65535:
        check.error(f"{path}.port", f"port number {spec['port']} must be in the range 1-65535")


def rewrite(check: Checker, path: str, spec: dict[str, Any]) -> None:
    if spec.get("uri") and "uriRegexRewrite" in spec:
        check.error(path, "rewrite may contain only one of uri or uriRegexRewrite")
    if not (spec.get("uri") or "uriRegexRewrite" in spec or spec.get("authority")):
        check.error(path, "rewrite must set uri, uriRegexRewrite or authority")
    if "uriRegexRewrite" in spec:
        regex_rewrite = spec["uriRegexRewrite"]
        if not regex_rewrite.get("match") or "rewrite" not in regex_rewrite:
            check.error(f"{path}.uriRegexRewrite", "uriRegexRewrite needs both match and rewrite")
        if regex_rewrite.get("match"):
            http.regex(check, f"{path}.uriRegexRewrite.match", regex_rewrite["match"])


def mirrors(check: Checker, path: str, route: dict[str, Any]) -> None:
    if "mirror" in route:
        destination(check, f"{path}.mirror", route["mirror"])
        if route.get("mirrors"):
            check.error(path, "only one of mirror or mirrors can be set")
    if "mirrorPercent" in route:
        check.warn(f"{path}.mirrorPercent", "deprecated: use mirrorPercentage")
        quantities.percent(check, f"{path}.mirrorPercent", route["mirrorPercent"])
    if "mirrorPercentage" in route:
        quantities.percent(check, f"{path}.mirrorPercentage.value", route["mirrorPercentage"].get("value", 0))
    for i, mirror in enumerate(route.get("mirrors", [])):
        if "destination" not in mirror:
            check.error(f"{path}.mirrors[{i}].destination", "a mirror needs a destination")
        else:
            destination(check, f"{path}.mirrors[{i}].destination", mirror["destination"])
        if "percentage" in mirror:
            quantities.percent(check, f"{path}.mirrors[{i}].percentage.value", mirror["percentage"].get("value", 0))


def direct_response(check: Checker, path: str, response: dict[str, Any]) -> None:
    if "status" not in response:
        check.error(f"{path}.status", "a direct response needs a status")
    else:
        http.http_status(check, f"{path}.status", response["status"])
    body = response.get("body", {})
    size = len(body.get("string", "")) + len(body.get("bytes", "")) * 3 // 4
    # The body travels in every route configuration pushed to every proxy.
    if size > 1024 * 1024:
        check.error(f"{path}.body", "direct response bodies must be smaller than 1MB")
    elif size > 100 * 1024:
        check.warn(f"{path}.body", "large direct response bodies slow down configuration pushes")
