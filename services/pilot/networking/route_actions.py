"""The per-route policies of a VirtualService HTTP rule: retries, faults, CORS, mirrors,
headers, redirects and rewrites, as Istio maps them to Envoy."""

from __future__ import annotations

from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.filters.common.fault.v3 import fault_pb2 as common_fault
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2
from envoy.type.matcher.v3 import regex_pb2
from envoy.type.v3 import percent_pb2
from google.protobuf import wrappers_pb2

from libs.config.durations import to_seconds
from libs.envoy import duration, pack
from services.pilot.networking.route_match import string_matcher

FAULT_FILTER = "envoy.filters.http.fault"
CORS_FILTER = "envoy.filters.http.cors"

_DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
_REDIRECT_CODES = {
    301: rc.RedirectAction.MOVED_PERMANENTLY,
    302: rc.RedirectAction.FOUND,
    303: rc.RedirectAction.SEE_OTHER,
    307: rc.RedirectAction.TEMPORARY_REDIRECT,
    308: rc.RedirectAction.PERMANENT_REDIRECT,
}


def fractional(percent: float) -> percent_pb2.FractionalPercent:
    """Istio's Percent (a double 0-100) as parts per million."""
    return percent_pb2.FractionalPercent(
        numerator=round(percent * 10_000), denominator=percent_pb2.FractionalPercent.MILLION
    )


def retry_policy(retries: dict[str, Any] | None) -> rc.RetryPolicy | None:
    """Istio retries twice on connect failures and 503s unless told otherwise."""
    if retries is not None and retries.get("attempts", 0) == 0 and "retryOn" not in retries:
        return None
    policy = rc.RetryPolicy(
        retry_on=_DEFAULT_RETRY_ON,
        num_retries=wrappers_pb2.UInt32Value(value=2),
        retriable_status_codes=[503],
        host_selection_retry_max_attempts=5,
    )
    policy.retry_host_predicate.add(name="envoy.retry_host_predicates.previous_hosts").typed_config.CopyFrom(
        pack(previous_hosts_pb2.PreviousHostsPredicate())
    )
    if retries is None:
        return policy
    policy.num_retries.value = retries.get("attempts", 2)
    if "perTryTimeout" in retries:
        policy.per_try_timeout.CopyFrom(duration(to_seconds(retries["perTryTimeout"])))
    if "retryOn" in retries:
        conditions: list[str] = []
        codes: list[int] = []
        for item in (part.strip() for part in retries["retryOn"].split(",")):
            if item.isdigit():
                codes.append(int(item))
            elif item:
                conditions.append(item)
        if codes and "retriable-status-codes" not in conditions:
            conditions.append("retriable-status-codes")
        policy.retry_on = ",".join(conditions)
        del policy.retriable_status_codes[:]
        policy.retriable_status_codes.extend(codes)
    if "backoff" in retries:
        policy.retry_back_off.base_interval.CopyFrom(duration(to_seconds(retries["backoff"])))
    return policy


def fault(spec: dict[str, Any]) -> fault_pb2.HTTPFault:
    result = fault_pb2.HTTPFault()
    delay = spec.get("delay")
    if delay:
        percent = delay.get("percentage", {}).get("value", delay.get("percent", 100))
        result.delay.CopyFrom(common_fault.FaultDelay(
            fixed_delay=duration(to_seconds(delay.get("fixedDelay", delay.get("exponentialDelay", "0s")))),
            percentage=fractional(percent),
        ))
    abort = spec.get("abort")
    if abort:
        percent = abort.get("percentage", {}).get("value", 100)
        target = fault_pb2.FaultAbort(percentage=fractional(percent))
        if "httpStatus" in abort:
            target.http_status = abort["httpStatus"]
        elif "grpcStatus" in abort:
            target.grpc_status = _GRPC_CODES.get(abort["grpcStatus"], 2)
        else:
            target.http_status = 503
        result.abort.CopyFrom(target)
    return result


_GRPC_CODES = {
    name: number for number, name in enumerate((
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
        "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
        "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
    ))
}


def cors(spec: dict[str, Any]) -> cors_pb2.CorsPolicy:
    policy = cors_pb2.CorsPolicy()
    for origin in spec.get("allowOrigins", []):
        policy.allow_origin_string_match.append(string_matcher(origin))
    for origin in spec.get("allowOrigin", []):
        policy.allow_origin_string_match.append(string_matcher({"exact": origin}))
    if spec.get("allowMethods"):
        policy.allow_methods = ",".join(spec["allowMethods"])
    if spec.get("allowHeaders"):
        policy.allow_headers = ",".join(spec["allowHeaders"])
    if spec.get("exposeHeaders"):
        policy.expose_headers = ",".join(spec["exposeHeaders"])
    if "maxAge" in spec:
        policy.max_age = str(int(to_seconds(spec["maxAge"])))
    if "allowCredentials" in spec:
        policy.allow_credentials.value = spec["allowCredentials"]
    if spec.get("unmatchedPreflights") == "IGNORE":
        policy.forward_not_matching_preflights.value = False
    return policy


def header_options(operations: dict[str, Any]) -> tuple[list[base_pb2.HeaderValueOption], list[str]]:
    """Istio `set` overwrites, `add` appends, `remove` drops."""
    options: list[base_pb2.HeaderValueOption] = []
    for name, value in sorted(operations.get("set", {}).items()):
        options.append(base_pb2.HeaderValueOption(
            header=base_pb2.HeaderValue(key=name, value=value),
            append_action=base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD,
        ))
    for name, value in sorted(operations.get("add", {}).items()):
        options.append(base_pb2.HeaderValueOption(
            header=base_pb2.HeaderValue(key=name, value=value),
            append_action=base_pb2.HeaderValueOption.APPEND_IF_EXISTS_OR_ADD,
        ))
    return options, list(operations.get("remove", []))


def redirect(spec: dict[str, Any]) -> rc.RedirectAction:
    action = rc.RedirectAction()
    if "uri" in spec:
        action.path_redirect = spec["uri"]
    if "authority" in spec:
        action.host_redirect = spec["authority"]
    if "port" in spec:
        action.port_redirect = spec["port"]
    if "scheme" in spec:
        action.scheme_redirect = spec["scheme"]
    action.response_code = _REDIRECT_CODES.get(spec.get("redirectCode", 301), rc.RedirectAction.MOVED_PERMANENTLY)
    return action


def direct_response(status: int, body: str) -> rc.DirectResponseAction:
    action = rc.DirectResponseAction(status=status)
    if body:
        action.body.inline_string = body
    return action


def rewrite(action: rc.RouteAction, spec: dict[str, Any]) -> None:
    if "uri" in spec:
        action.prefix_rewrite = spec["uri"]
    if "uriRegexRewrite" in spec:
        action.regex_rewrite.pattern.CopyFrom(regex_pb2.RegexMatcher(regex=spec["uriRegexRewrite"].get("match", "")))
        action.regex_rewrite.substitution = spec["uriRegexRewrite"].get("rewrite", "")
    if "authority" in spec:
        action.host_rewrite_literal = spec["authority"]
