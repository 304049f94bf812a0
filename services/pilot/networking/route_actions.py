"""The per-route policies of a VirtualService HTTP rule: retries, faults, CORS, mirrors,
headers, redirects, direct responses and rewrites, mapped as Istio's route.go maps them."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2
from envoy.extensions.retry.priority.previous_priorities.v3 import previous_priorities_config_pb2
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
# The status codes Go's http.StatusText knows: what Istio accepts as a code in `retryOn`.
_HTTP_STATUS_CODES = frozenset({
    100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308,
    400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 418, 421, 422, 423,
    424, 425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
})
_GRPC_CODES = {
    name: number for number, name in enumerate((
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
        "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
        "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
    ))
}


def fractional(percent: float) -> percent_pb2.FractionalPercent:
    """Istio's Percent (a double 0-100) as parts per million."""
    return percent_pb2.FractionalPercent(numerator=int(percent * 10_000),
                                         denominator=percent_pb2.FractionalPercent.MILLION)


def _hundredths(percent: int) -> percent_pb2.FractionalPercent:
    """The deprecated integer percentages (`mirrorPercent`, `delay.percent`)."""
    return percent_pb2.FractionalPercent(numerator=percent, denominator=percent_pb2.FractionalPercent.HUNDRED)


# -- retries -----------------------------------------------------------------------------

def _default_retry_policy(*, consistent_hash: bool) -> rc.RetryPolicy:
    policy = rc.RetryPolicy(
        retry_on=_DEFAULT_RETRY_ON,
        num_retries=wrappers_pb2.UInt32Value(value=2),
        retriable_status_codes=[503],
        host_selection_retry_max_attempts=5,
    )
    if not consistent_hash:
        # Prefer hosts not tried yet; with consistent hashing the request must stay on its host.
        _retry_previous_hosts(policy)
    return policy


def _retry_previous_hosts(policy: rc.RetryPolicy) -> None:
    policy.retry_host_predicate.add(name="envoy.retry_host_predicates.previous_hosts").typed_config.CopyFrom(
        pack(previous_hosts_pb2.PreviousHostsPredicate()))


def _parse_retry_on(retry_on: str) -> tuple[str, list[int]]:
    conditions: list[str] = []
    codes: list[int] = []
    for part in (p.strip() for p in retry_on.split(",")):
        if not part:
            continue
        if part.isdigit() and int(part) in _HTTP_STATUS_CODES:
            codes.append(int(part))
        else:
            conditions.append(part)
    return ",".join(conditions), codes


def retry_policy(retries: dict[str, Any] | None, *, consistent_hash: bool = False) -> rc.RetryPolicy | None:
    """Istio's retry.ConvertPolicy: without `retries` the mesh default (2 retries on connect
    failures, resets and 503); `attempts` 0 (or absent) disables retries; `attempts` counts
    retries, not tries; numbers in `retryOn` are retriable status codes."""
    policy = _default_retry_policy(consistent_hash=consistent_hash)
    if retries is None:
        return policy
    if retries.get("attempts", 0) <= 0:
        return None
    policy.num_retries.value = retries["attempts"]
    if retries.get("retryOn"):
        policy.retry_on, codes = _parse_retry_on(retries["retryOn"])
        del policy.retriable_status_codes[:]
        policy.retriable_status_codes.extend(codes)
        if codes and "retriable-status-codes" not in policy.retry_on:
            policy.retry_on = ",".join(filter(None, (policy.retry_on, "retriable-status-codes")))
    if "perTryTimeout" in retries:
        policy.per_try_timeout.CopyFrom(duration(to_seconds(retries["perTryTimeout"])))
    if "retryIgnorePreviousHosts" in retries:
        del policy.retry_host_predicate[:]
        if retries["retryIgnorePreviousHosts"]:
            _retry_previous_hosts(policy)
    if retries.get("retryRemoteLocalities"):
        policy.retry_priority.name = "envoy.retry_priorities.previous_priorities"
        policy.retry_priority.typed_config.CopyFrom(pack(
            previous_priorities_config_pb2.PreviousPrioritiesConfig(update_frequency=2)))
    if "backoff" in retries:
        policy.retry_back_off.base_interval.CopyFrom(duration(to_seconds(retries["backoff"])))
    return policy


# -- faults ------------------------------------------------------------------------------

def fault(spec: dict[str, Any], warnings: list[str] | None = None) -> fault_pb2.HTTPFault | None:
    """Istio's TranslateFault.  A fault without a percentage injects nothing (Istio's API:
    "if not specified, no request will be"); exponential delays and HTTP/2 errors are not
    supported by Istio either, and are dropped with a warning.  None when nothing is left."""
    notes = warnings if warnings is not None else []
    result = fault_pb2.HTTPFault()
    delay = spec.get("delay")
    if delay:
        if "fixedDelay" in delay:
            result.delay.fixed_delay.CopyFrom(duration(to_seconds(delay["fixedDelay"])))
            if "percentage" in delay:
                result.delay.percentage.CopyFrom(fractional(delay["percentage"].get("value", 0)))
            else:
                result.delay.percentage.CopyFrom(_hundredths(delay.get("percent", 0)))
        else:
            notes.append("fault.delay: only fixedDelay is supported; the delay is not injected")
    abort = spec.get("abort")
    if abort:
        target = fault_pb2.FaultAbort()
        if "percentage" in abort:
            target.percentage.CopyFrom(fractional(abort["percentage"].get("value", 0)))
        if "httpStatus" in abort:
            target.http_status = abort["httpStatus"]
            result.abort.CopyFrom(target)
        elif "grpcStatus" in abort:
            target.grpc_status = _GRPC_CODES.get(abort["grpcStatus"], _GRPC_CODES["UNKNOWN"])
            result.abort.CopyFrom(target)
        else:
            notes.append("fault.abort: only httpStatus and grpcStatus are supported; the abort is not injected")
    if not result.HasField("delay") and not result.HasField("abort"):
        return None
    return result


# -- CORS --------------------------------------------------------------------------------

def cors(spec: dict[str, Any]) -> cors_pb2.CorsPolicy:
    policy = cors_pb2.CorsPolicy()
    # Envoy 1.30 stopped forwarding unmatched preflights by default; Istio keeps forwarding
    # unless `unmatchedPreflights: IGNORE`.
    policy.forward_not_matching_preflights.value = spec.get("unmatchedPreflights") != "IGNORE"
    if "allowOrigins" in spec:
        policy.allow_origin_string_match.extend(string_matcher(o) for o in spec["allowOrigins"])
    elif "allowOrigin" in spec:
        policy.allow_origin_string_match.extend(string_matcher({"exact": o}) for o in spec["allowOrigin"])
    policy.filter_enabled.default_value.CopyFrom(
        percent_pb2.FractionalPercent(numerator=100, denominator=percent_pb2.FractionalPercent.HUNDRED))
    if "allowCredentials" in spec:
        policy.allow_credentials.value = spec["allowCredentials"]
    policy.allow_headers = ",".join(spec.get("allowHeaders", []))
    policy.allow_methods = ",".join(spec.get("allowMethods", []))
    policy.expose_headers = ",".join(spec.get("exposeHeaders", []))
    if "maxAge" in spec:
        policy.max_age = str(int(to_seconds(spec["maxAge"])))
    return policy


# -- headers -----------------------------------------------------------------------------

@dataclass
class HeaderOperations:
    """Istio's TranslateHeadersOperations: `set` overwrites, `add` appends, `remove` drops;
    `:authority`/`host` in a request `set` or `add` rewrites the upstream Host instead."""

    request_add: list[base_pb2.HeaderValueOption] = field(default_factory=list)
    request_remove: list[str] = field(default_factory=list)
    response_add: list[base_pb2.HeaderValueOption] = field(default_factory=list)
    response_remove: list[str] = field(default_factory=list)
    authority: str = ""

    def apply_to(self, target: rc.Route | rc.WeightedCluster.ClusterWeight) -> None:
        target.request_headers_to_add.extend(self.request_add)
        target.request_headers_to_remove.extend(self.request_remove)
        target.response_headers_to_add.extend(self.response_add)
        target.response_headers_to_remove.extend(self.response_remove)


def _internal(name: str) -> bool:
    """Pseudo-headers and Host: Envoy cannot modify them through header options."""
    return name.startswith(":") or name.lower() == "host"


def _authority(headers: dict[str, str]) -> str:
    found = ""
    for name, value in headers.items():
        if name.lower() in (":authority", "host"):
            found = value
    return found


def _options(headers: dict[str, str], action: base_pb2.HeaderValueOption.HeaderAppendAction.ValueType
             ) -> list[base_pb2.HeaderValueOption]:
    return [base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key=name, value=value), append_action=action)
            for name, value in sorted(headers.items()) if not _internal(name)]


def header_operations(headers: dict[str, Any] | None) -> HeaderOperations:
    ops = HeaderOperations()
    if not headers:
        return ops
    overwrite = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
    append = base_pb2.HeaderValueOption.APPEND_IF_EXISTS_OR_ADD
    request = headers.get("request", {})
    response = headers.get("response", {})
    ops.request_add = _options(request.get("set", {}), overwrite) + _options(request.get("add", {}), append)
    ops.response_add = _options(response.get("set", {}), overwrite) + _options(response.get("add", {}), append)
    ops.request_remove = [h for h in request.get("remove", []) if not _internal(h)]
    ops.response_remove = [h for h in response.get("remove", []) if not _internal(h)]
    ops.authority = _authority(request.get("set", {})) or _authority(request.get("add", {}))
    return ops


# -- redirect, direct response, rewrite, mirror, timeout ---------------------------------

def redirect(spec: dict[str, Any], *, listener_port: int, tls: bool) -> rc.RedirectAction | None:
    """Istio's ApplyRedirect; None for a status code Envoy cannot redirect with."""
    code = _REDIRECT_CODES.get(spec.get("redirectCode") or 301)
    if code is None:
        return None
    action = rc.RedirectAction(host_redirect=spec.get("authority", ""), path_redirect=spec.get("uri", ""),
                               response_code=code)
    if spec.get("scheme"):
        action.scheme_redirect = spec["scheme"]
    if "port" in spec or "derivePort" in spec:
        if "port" in spec:
            action.port_redirect = spec["port"]
        elif spec["derivePort"] == "FROM_REQUEST_PORT":
            # Envoy cannot take the port from the request, but routes are built per port.
            action.port_redirect = listener_port
        scheme = spec.get("scheme") or ("https" if tls else "http")
        if (action.port_redirect, scheme) in ((80, "http"), (443, "https")):
            action.port_redirect = 0
    return action


def direct_response(status: int, body: dict[str, Any] | None = None) -> rc.DirectResponseAction:
    action = rc.DirectResponseAction(status=status)
    if body and "string" in body:
        action.body.inline_string = body["string"]
    elif body and "bytes" in body:
        try:
            action.body.inline_bytes = base64.b64decode(body["bytes"], validate=True)
        except binascii.Error:
            action.body.inline_bytes = body["bytes"].encode()
    return action


def rewrite(action: rc.RouteAction, spec: dict[str, Any]) -> None:
    """A regex rewrite takes precedence over a prefix rewrite (Envoy accepts only one)."""
    regex = spec.get("uriRegexRewrite")
    if regex:
        action.regex_rewrite.pattern.CopyFrom(regex_pb2.RegexMatcher(regex=regex.get("match", "")))
        action.regex_rewrite.substitution = regex.get("rewrite", "")
    elif spec.get("uri"):
        action.prefix_rewrite = spec["uri"]


def mirror_fraction(percentage: dict[str, Any] | None, legacy_percent: int | None = None
                    ) -> percent_pb2.FractionalPercent | None:
    """Istio's MirrorPercent: 100% by default, None (no mirroring) for an explicit 0."""
    if percentage is not None:
        value = percentage.get("value", 0)
        return fractional(value) if value > 0 else None
    if legacy_percent is not None:
        return _hundredths(legacy_percent) if legacy_percent > 0 else None
    return _hundredths(100)


def mirror_policy(cluster: str, fraction: percent_pb2.FractionalPercent) -> rc.RouteAction.RequestMirrorPolicy:
    policy = rc.RouteAction.RequestMirrorPolicy(cluster=cluster, trace_sampled=wrappers_pb2.BoolValue(value=False))
    policy.runtime_fraction.default_value.CopyFrom(fraction)
    return policy


def set_timeout(action: rc.RouteAction, timeout: str | None) -> None:
    """Istio disables Envoy's 15 s default unless the rule sets a timeout, and bounds
    gRPC's `grpc-timeout` header by the same value."""
    value = duration(to_seconds(timeout) if timeout else 0)
    action.timeout.CopyFrom(value)
    action.max_grpc_timeout.CopyFrom(value)
