"""Mixer policy configs (config.istio.io/v1alpha2) that Istio 1.0/1.1 rejects, that Mixer
could never run, or that name adapters and templates Mizzen's policy service does not run.

`cases.assert_rejected` writes every kind it does not know at networking.istio.io/v1, so the
rows here are run by `_assert_rejected` at config.istio.io/v1alpha2.
"""

from __future__ import annotations

import pytest

from libs.config import warnings_of
from tests.unit.config.cases import Case, parse

API_VERSION = "config.istio.io/v1alpha2"
# A valid action and parts of valid handlers, to put one mistake into.
ACTION = "actions: [{handler: h, instances: [i]}]"
REDIS = "compiledAdapter: redisquota, params: {redisServerUrl: 'redis:6379', quotas: [%s]}"
MEMQUOTA = "compiledAdapter: memquota, params: {quotas: [%s]}"
LISTCHECKER = "compiledAdapter: listchecker, params: {%s}"
QUOTA_OK = "name: q.instance.default, maxAmount: 5, validDuration: 1s"


def rule(body: str) -> str:
    return f"{{{body}}}"


def handler(body: str) -> str:
    return f"{{{body}}}"


def instance(body: str) -> str:
    return f"{{{body}}}"


def quota_rule(body: str) -> str:
    return f"{{rules: [{{{body}}}]}}"


def binding(services: str, specs: str = "[{name: request-count}]") -> str:
    return f"{{services: {services}, quotaSpecs: {specs}}}"


A0 = "spec.actions[0]"
P = "spec.params"
Q0 = "spec.params.quotas[0]"
R0 = "spec.rules[0]"
CLAUSE = "spec.rules[0].match[0].clause[request.path]"

CASES = [
    # --- rule: match
    Case("match-typo", "rule", rule(f"match: 'sourc.labels[\"app\"] == \"x\"', {ACTION}"), "spec.match",
         "sourc.labels"),
    Case("match-not-bool", "rule", rule(f"match: 'source.labels[\"app\"]', {ACTION}"), "spec.match",
         "a match must be BOOL"),
    Case("match-syntax", "rule", rule(f"match: 'destination.labels[\"app\"] ==', {ACTION}"), "spec.match",
         "position"),
    Case("match-not-string", "rule", rule(f"match: true, {ACTION}"), "spec.match", "must be a string"),
    # --- rule: actions
    Case("no-actions", "rule", rule("match: 'true'"), "spec.actions", "a rule needs at least one action"),
    Case("empty-actions", "rule", rule("actions: []"), "spec.actions", "a rule needs at least one action"),
    Case("action-no-handler", "rule", rule("actions: [{instances: [i]}]"), f"{A0}.handler",
         "a handler reference is required"),
    Case("action-no-instances", "rule", rule("actions: [{handler: h}]"), f"{A0}.instances",
         "an action needs at least one instance"),
    Case("action-empty-instances", "rule", rule("actions: [{handler: h, instances: []}]"), f"{A0}.instances",
         "an action needs at least one instance"),
    Case("handler-prometheus", "rule", rule("actions: [{handler: handler.prometheus, instances: [i]}]"),
         f"{A0}.handler", "Mizzen's policy service does not run the prometheus adapter (it runs denier, "
                          "listchecker, memquota, redisquota)"),
    Case("handler-stdio-qualified", "rule",
         rule("actions: [{handler: handler.stdio.istio-system, instances: [i]}]"), f"{A0}.handler",
         "does not run the stdio adapter"),
    Case("handler-unknown-kind", "rule", rule("actions: [{handler: h.ratelimiter.istio-system, instances: [i]}]"),
         f"{A0}.handler", "unknown adapter 'ratelimiter'"),
    Case("handler-template-kind", "rule", rule("actions: [{handler: h.quota, instances: [i]}]"), f"{A0}.handler",
         "quota is an instance kind, not a handler kind"),
    Case("handler-too-many-parts", "rule", rule("actions: [{handler: h.denier.istio-system.cluster, instances: [i]}]"),
         f"{A0}.handler", "is not a handler reference"),
    Case("handler-empty-part", "rule", rule("actions: [{handler: h..denier, instances: [i]}]"), f"{A0}.handler",
         "is not a handler reference"),
    Case("handler-bad-name", "rule", rule("actions: [{handler: Deny_Handler, instances: [i]}]"), f"{A0}.handler",
         "'Deny_Handler' is not a resource name"),
    Case("handler-bad-namespace", "rule", rule("actions: [{handler: h.Istio_System, instances: [i]}]"),
         f"{A0}.handler", "is neither a handler kind (denier, listchecker, memquota, redisquota) nor a namespace"),
    Case("handler-bad-namespace-qualified", "rule", rule("actions: [{handler: h.denier.Istio, instances: [i]}]"),
         f"{A0}.handler", "'Istio' is not a namespace name"),
    Case("instance-metric", "rule", rule("actions: [{handler: h, instances: [requestcount.metric]}]"),
         f"{A0}.instances[0]", "Mizzen's policy service does not support the metric template (it supports "
                               "checknothing, listentry, quota)"),
    Case("instance-logentry-second", "rule", rule("actions: [{handler: h, instances: [i, accesslog.logentry]}]"),
         f"{A0}.instances[1]", "does not support the logentry template"),
    Case("instance-adapter-kind", "rule", rule("actions: [{handler: h, instances: [i.denier]}]"),
         f"{A0}.instances[0]", "denier is a handler kind, not an instance kind"),
    Case("instance-twice", "rule", rule("actions: [{handler: h, instances: [i, i.instance]}]"),
         f"{A0}.instances[1]", "is already listed as instances[0]"),
    Case("instance-twice-qualified", "rule",
         rule("actions: [{handler: h, instances: [i.quota, i.quota.default]}]"), f"{A0}.instances[1]",
         "is already listed as instances[0]"),
    Case("instance-wrong-template", "rule",
         rule("actions: [{handler: whitelist.listchecker, instances: [requestcount.quota]}]"),
         f"{A0}.instances[0]", "is a quota instance, which the listchecker adapter does not take (it takes "
                               "listentry)"),
    Case("instance-wrong-template-memquota", "rule",
         rule("actions: [{handler: handler.memquota, instances: [appversion.listentry]}]"), f"{A0}.instances[0]",
         "which the memquota adapter does not take"),
    Case("action-unknown-field", "rule", rule("actions: [{handler: h, instances: [i], instance: j}]"),
         f"{A0}.instance", "unknown field in mixer.Action"),
    # --- rule: header operations
    Case("header-name", "rule", rule(f"{ACTION}, requestHeaderOperations: [{{name: 'x user', values: ['\"a\"']}}]"),
         "spec.requestHeaderOperations[0].name", "is not a valid header name"),
    Case("header-name-missing", "rule", rule(f"{ACTION}, responseHeaderOperations: [{{values: ['\"a\"']}}]"),
         "spec.responseHeaderOperations[0].name", "header name cannot be empty"),
    Case("header-operation", "rule",
         rule(f"{ACTION}, requestHeaderOperations: [{{name: x-a, values: ['\"a\"'], operation: SET}}]"),
         "spec.requestHeaderOperations[0].operation", "is not one of REPLACE, REMOVE, APPEND"),
    Case("header-action-output", "rule",
         rule("actions: [{handler: h, instances: [i], name: x}], "
              "requestHeaderOperations: [{name: user-group, values: [x.output.value]}]"),
         "spec.requestHeaderOperations[0].values[0]", "action 'x' has no output"),
    Case("header-value-typo", "rule", rule(f"{ACTION}, requestHeaderOperations: [{{name: x-a, values: [sourc.name]}}]"),
         "spec.requestHeaderOperations[0].values[0]", "sourc.name"),
    Case("rule-unknown-field", "rule", rule(f"{ACTION}, selector: 'true'"), "spec.selector",
         "unknown field in mixer.Rule"),
    # --- handler (1.1)
    Case("handler-no-adapter", "handler", handler("params: {status: {code: 7}}"), "spec.compiledAdapter",
         "compiledAdapter is required (one of denier, listchecker, memquota, redisquota)"),
    Case("handler-prometheus-adapter", "handler", handler("compiledAdapter: prometheus, params: {metrics: []}"),
         "spec.compiledAdapter", "Mizzen's policy service does not run the prometheus adapter (it runs denier, "
                                 "listchecker, memquota, redisquota)"),
    Case("handler-unknown-adapter", "handler", handler("compiledAdapter: ratelimit"), "spec.compiledAdapter",
         "unknown adapter 'ratelimit' (Mizzen's policy service runs denier, listchecker, memquota, redisquota)"),
    Case("handler-params-list", "handler", handler("compiledAdapter: denier, params: []"), P,
         "must be an object, not list"),
    Case("handler-params-unknown-field", "handler", handler("compiledAdapter: denier, params: {code: 7}"),
         f"{P}.code", "unknown field in denier.Params"),
    Case("handler-params-for-other-adapter", "handler",
         handler("compiledAdapter: denier, params: {overrides: [v1]}"), f"{P}.overrides",
         "unknown field in denier.Params"),
    Case("handler-unknown-field", "handler", handler("compiledAdapter: denier, param: {}"), "spec.param",
         "unknown field in mixer.Handler"),
    # --- denier params
    Case("denier-code-range", "handler", handler("compiledAdapter: denier, params: {status: {code: 17}}"),
         f"{P}.status.code", "17 is not a google.rpc.Code (0-16)"),
    Case("denier-code-negative", "handler", handler("compiledAdapter: denier, params: {status: {code: -1}}"),
         f"{P}.status.code", "is not a google.rpc.Code"),
    Case("denier-code-name", "handler",
         handler("compiledAdapter: denier, params: {status: {code: PERMISSION_DENIED}}"), f"{P}.status.code",
         "must be an integer"),
    Case("denier-use-count", "handler", handler("compiledAdapter: denier, params: {validUseCount: -1}"),
         f"{P}.validUseCount", "must not be negative"),
    Case("denier-duration", "handler", handler("compiledAdapter: denier, params: {validDuration: 5 seconds}"),
         f"{P}.validDuration", "is not a duration"),
    Case("denier-details", "handler",
         handler("compiledAdapter: denier, params: {status: {code: 7, details: [{reason: x}]}}"),
         f"{P}.status.details[0]", "an object with an @type"),
    # --- listchecker params
    Case("list-url-scheme", "handler", handler(LISTCHECKER % "providerUrl: 'ftp://lists/ok'"), f"{P}.providerUrl",
         "is not an http or https URL with a host"),
    Case("list-url-no-host", "handler", handler(LISTCHECKER % "providerUrl: 'http:///list'"), f"{P}.providerUrl",
         "is not an http or https URL with a host"),
    Case("list-url-relative", "handler", handler(LISTCHECKER % "providerUrl: lists.example.com/list"),
         f"{P}.providerUrl", "is not an http or https URL with a host"),
    Case("list-url-port", "handler", handler(LISTCHECKER % "providerUrl: 'http://lists:http/list'"),
         f"{P}.providerUrl", "is not an http or https URL with a host"),
    Case("list-refresh-short", "handler",
         handler(LISTCHECKER % "providerUrl: 'http://lists/l', refreshInterval: 500ms, ttl: 10s"),
         f"{P}.refreshInterval", "must be at least 1s"),
    Case("list-ttl-short", "handler",
         handler(LISTCHECKER % "providerUrl: 'http://lists/l', refreshInterval: 60s, ttl: 30s"), f"{P}.ttl",
         "ttl 30s must be longer than refreshInterval 60s"),
    Case("list-ttl-equal", "handler",
         handler(LISTCHECKER % "providerUrl: 'http://lists/l', refreshInterval: 1m, ttl: 60s"), f"{P}.ttl",
         "ttl 60s must be longer than refreshInterval 60s"),
    Case("list-ttl-default", "handler", handler(LISTCHECKER % "providerUrl: 'http://lists/l', refreshInterval: 10m"),
         f"{P}.refreshInterval", "ttl 300s (the default) must be longer than refreshInterval 600s"),
    Case("list-ttl-below-default-refresh", "handler", handler(LISTCHECKER % "providerUrl: 'http://lists/l', ttl: 30s"),
         f"{P}.ttl", "ttl 30s must be longer than refreshInterval 60s (the default)"),
    Case("list-ip-override", "handler",
         handler(LISTCHECKER % "entryType: IP_ADDRESSES, overrides: [10.57.0.0/16, 10.0.0.300]"),
         f"{P}.overrides[1]", "'10.0.0.300' is not a valid IP address (entryType is IP_ADDRESSES)"),
    Case("list-ip-cidr", "handler", handler(LISTCHECKER % "entryType: IP_ADDRESSES, overrides: [10.0.0.0/33]"),
         f"{P}.overrides[0]", "is not a valid CIDR block"),
    Case("list-ip-name", "handler", handler(LISTCHECKER % "entryType: IP_ADDRESSES, overrides: [v1]"),
         f"{P}.overrides[0]", "is not a valid IP address"),
    Case("list-regex", "handler", handler(LISTCHECKER % "entryType: REGEX, overrides: ['v(1|2']"),
         f"{P}.overrides[0]", "invalid RE2 regex"),
    Case("list-regex-lookahead", "handler", handler(LISTCHECKER % "entryType: REGEX, overrides: ['v(?=1)']"),
         f"{P}.overrides[0]", "invalid RE2 regex"),
    Case("list-regex-empty", "handler", handler(LISTCHECKER % "entryType: REGEX, overrides: ['']"),
         f"{P}.overrides[0]", "regex must not be empty"),
    Case("list-entry-type", "handler", handler(LISTCHECKER % "entryType: IPS, overrides: [v1]"), f"{P}.entryType",
         "is not one of STRINGS, CASE_INSENSITIVE_STRINGS, IP_ADDRESSES, REGEX"),
    Case("list-caching-use-count", "handler", handler(LISTCHECKER % "overrides: [v1], cachingUseCount: -5"),
         f"{P}.cachingUseCount", "must not be negative"),
    Case("list-caching-interval", "handler", handler(LISTCHECKER % "overrides: [v1], cachingInterval: -5s"),
         f"{P}.cachingInterval", "must not be negative"),
    Case("list-blacklist-string", "handler", handler(LISTCHECKER % "overrides: [v1], blacklist: 'yes'"),
         f"{P}.blacklist", "must be true or false"),
    # --- memquota params
    Case("memquota-no-quotas", "handler", handler("compiledAdapter: memquota, params: {}"), f"{P}.quotas",
         "at least one quota is required"),
    Case("memquota-no-params", "handler", handler("compiledAdapter: memquota"), f"{P}.quotas",
         "at least one quota is required"),
    Case("memquota-no-name", "handler", handler(MEMQUOTA % "{maxAmount: 5, validDuration: 1s}"), f"{Q0}.name",
         "a quota needs the name of the quota instance it limits"),
    Case("memquota-duplicate-name", "handler", handler(MEMQUOTA % f"{{{QUOTA_OK}}}, {{{QUOTA_OK}}}"),
         "spec.params.quotas[1].name", "quota 'q.instance.default' is already defined by quotas[0]"),
    Case("memquota-max-zero", "handler",
         handler(MEMQUOTA % "{name: q.instance.default, maxAmount: 0, validDuration: 1s}"), f"{Q0}.maxAmount",
         "maxAmount 0 must be greater than 0"),
    Case("memquota-max-missing", "handler", handler(MEMQUOTA % "{name: q.instance.default, validDuration: 1s}"),
         f"{Q0}.maxAmount", "maxAmount is required and must be greater than 0"),
    Case("memquota-max-string", "handler",
         handler(MEMQUOTA % "{name: q.instance.default, maxAmount: lots, validDuration: 1s}"), f"{Q0}.maxAmount",
         "must be an integer"),
    Case("memquota-duration-missing", "handler", handler(MEMQUOTA % "{name: q.instance.default, maxAmount: 5}"),
         f"{Q0}.validDuration", "validDuration is required: Mizzen's policy service runs rate-limit quotas only"),
    Case("memquota-duration-zero", "handler",
         handler(MEMQUOTA % "{name: q.instance.default, maxAmount: 5, validDuration: 0s}"), f"{Q0}.validDuration",
         "validDuration 0s must be greater than 0"),
    Case("memquota-override-max", "handler",
         handler(MEMQUOTA % f"{{{QUOTA_OK}, overrides: [{{dimensions: {{a: b}}, maxAmount: 0, validDuration: 1s}}]}}"),
         f"{Q0}.overrides[0].maxAmount", "maxAmount 0 must be greater than 0"),
    Case("memquota-override-no-dimensions", "handler",
         handler(MEMQUOTA % f"{{{QUOTA_OK}, overrides: [{{maxAmount: 2, validDuration: 1s}}]}}"),
         f"{Q0}.overrides[0].dimensions", "an override needs at least one dimension"),
    Case("memquota-override-duration-zero", "handler",
         handler(MEMQUOTA % f"{{{QUOTA_OK}, overrides: [{{dimensions: {{a: b}}, maxAmount: 2, validDuration: 0s}}]}}"),
         f"{Q0}.overrides[0].validDuration", "validDuration 0s must be greater than 0"),
    Case("memquota-override-dimension-number", "handler",
         handler(MEMQUOTA % f"{{{QUOTA_OK}, overrides: [{{dimensions: {{code: 200}}, maxAmount: 2}}]}}"),
         f"{Q0}.overrides[0].dimensions[code]", "must be a string"),
    Case("memquota-dedup-zero", "handler",
         handler(f"compiledAdapter: memquota, params: {{quotas: [{{{QUOTA_OK}}}], minDeduplicationDuration: 0s}}"),
         f"{P}.minDeduplicationDuration", "must be greater than 0"),
    Case("memquota-bucket", "handler", handler(MEMQUOTA % f"{{{QUOTA_OK}, bucketDuration: 1s}}"),
         f"{Q0}.bucketDuration", "unknown field in memquota.Params.Quota"),
    # --- redisquota params
    Case("redis-no-url", "handler", handler(f"compiledAdapter: redisquota, params: {{quotas: [{{{QUOTA_OK}}}]}}"),
         f"{P}.redisServerUrl", "redisServerUrl (host:port of the Redis server) is required"),
    Case("redis-url-no-port", "handler",
         handler(f"compiledAdapter: redisquota, params: {{redisServerUrl: redis-master, quotas: [{{{QUOTA_OK}}}]}}"),
         f"{P}.redisServerUrl", "'redis-master' is not host:port"),
    Case("redis-url-scheme", "handler",
         handler(f"compiledAdapter: redisquota, params: {{redisServerUrl: 'redis://redis:6379', "
                 f"quotas: [{{{QUOTA_OK}}}]}}"), f"{P}.redisServerUrl", "'redis://redis:6379'"),
    Case("redis-url-port-range", "handler",
         handler(f"compiledAdapter: redisquota, params: {{redisServerUrl: 'redis:70000', quotas: [{{{QUOTA_OK}}}]}}"),
         f"{P}.redisServerUrl", "is not host:port"),
    Case("redis-no-quotas", "handler", handler("compiledAdapter: redisquota, params: {redisServerUrl: 'redis:6379'}"),
         f"{P}.quotas", "at least one quota is required"),
    Case("redis-pool-zero", "handler",
         handler(f"compiledAdapter: redisquota, params: {{redisServerUrl: 'redis:6379', connectionPoolSize: 0, "
                 f"quotas: [{{{QUOTA_OK}}}]}}"), f"{P}.connectionPoolSize",
         "connectionPoolSize 0 must be greater than 0"),
    Case("redis-rolling-no-bucket", "handler", handler(REDIS % f"{{{QUOTA_OK}, rateLimitAlgorithm: ROLLING_WINDOW}}"),
         f"{Q0}.bucketDuration", "bucketDuration must be greater than 0 for ROLLING_WINDOW"),
    Case("redis-rolling-zero-bucket", "handler",
         handler(REDIS % f"{{{QUOTA_OK}, rateLimitAlgorithm: ROLLING_WINDOW, bucketDuration: 0s}}"),
         f"{Q0}.bucketDuration", "bucketDuration must be greater than 0 for ROLLING_WINDOW"),
    Case("redis-rolling-bucket-too-long", "handler",
         handler(REDIS % f"{{{QUOTA_OK}, rateLimitAlgorithm: ROLLING_WINDOW, bucketDuration: 1s}}"),
         f"{Q0}.validDuration", "validDuration 1s must be longer than bucketDuration 1s for ROLLING_WINDOW"),
    Case("redis-algorithm", "handler", handler(REDIS % f"{{{QUOTA_OK}, rateLimitAlgorithm: SLIDING_WINDOW}}"),
         f"{Q0}.rateLimitAlgorithm", "is not one of FIXED_WINDOW, ROLLING_WINDOW"),
    Case("redis-duration-missing", "handler", handler(REDIS % "{name: q.instance.default, maxAmount: 5}"),
         f"{Q0}.validDuration", "validDuration is required"),
    Case("redis-max-negative", "handler",
         handler(REDIS % "{name: q.instance.default, maxAmount: -1, validDuration: 1s}"), f"{Q0}.maxAmount",
         "maxAmount -1 must be greater than 0"),
    Case("redis-override-max", "handler",
         handler(REDIS % f"{{{QUOTA_OK}, overrides: [{{dimensions: {{a: b}}}}]}}"), f"{Q0}.overrides[0].maxAmount",
         "maxAmount is required and must be greater than 0"),
    Case("redis-override-dimensions", "handler", handler(REDIS % f"{{{QUOTA_OK}, overrides: [{{maxAmount: 1}}]}}"),
         f"{Q0}.overrides[0].dimensions", "an override needs at least one dimension"),
    # Redis overrides have no validDuration (memquota's do).
    Case("redis-override-duration", "handler",
         handler(REDIS % f"{{{QUOTA_OK}, overrides: [{{dimensions: {{a: b}}, maxAmount: 1, validDuration: 5s}}]}}"),
         f"{Q0}.overrides[0].validDuration", "unknown field in redisquota.Params.Override"),
    # --- 1.0 per-adapter kinds: the spec is the params
    Case("denier-kind-code", "denier", "{status: {code: 20, message: Not allowed}}", "spec.status.code",
         "is not a google.rpc.Code"),
    Case("denier-kind-generic-fields", "denier", "{compiledAdapter: denier}", "spec.compiledAdapter",
         "unknown field in denier.Params"),
    Case("listchecker-kind-url", "listchecker", "{providerUrl: 'file:///etc/list'}", "spec.providerUrl",
         "is not an http or https URL with a host"),
    Case("memquota-kind-max", "memquota",
         "{quotas: [{name: requestcount.quota.istio-system, maxAmount: 0, validDuration: 1s}]}",
         "spec.quotas[0].maxAmount", "must be greater than 0"),
    Case("redisquota-kind-url", "redisquota", f"{{quotas: [{{{QUOTA_OK}}}]}}", "spec.redisServerUrl", "is required"),
    # --- instance (1.1)
    Case("instance-no-template", "instance", instance("params: {value: source.ip}"), "spec.compiledTemplate",
         "compiledTemplate is required (one of checknothing, listentry, quota)"),
    Case("instance-metric-template", "instance", instance("compiledTemplate: metric, params: {value: '1'}"),
         "spec.compiledTemplate", "Mizzen's policy service does not support the metric template (it supports "
                                  "checknothing, listentry, quota)"),
    Case("instance-unknown-template", "instance", instance("compiledTemplate: ratelimit"), "spec.compiledTemplate",
         "unknown template 'ratelimit'"),
    Case("listentry-value-typo", "instance", instance("compiledTemplate: listentry, params: {value: sourc.ip}"),
         f"{P}.value", "sourc.ip"),
    Case("listentry-value-missing", "instance", instance("compiledTemplate: listentry, params: {}"), f"{P}.value",
         "an expression is required"),
    Case("listentry-no-params", "instance", instance("compiledTemplate: listentry"), f"{P}.value",
         "an expression is required"),
    Case("listentry-value-syntax", "instance",
         instance("compiledTemplate: listentry, params: {value: 'source.labels[\"version\"'}"), f"{P}.value",
         "position"),
    Case("quota-dimension-typo", "instance",
         instance("compiledTemplate: quota, params: {dimensions: {source: 'sourc.labels[\"app\"] | \"unknown\"'}}"),
         f"{P}.dimensions[source]", "sourc.labels"),
    Case("quota-dimension-empty", "instance", instance("compiledTemplate: quota, params: {dimensions: {source: ''}}"),
         f"{P}.dimensions[source]", "an expression is required"),
    Case("quota-dimension-number", "instance", instance("compiledTemplate: quota, params: {dimensions: {n: 1}}"),
         f"{P}.dimensions[n]", "must be a string"),
    Case("checknothing-params", "instance", instance("compiledTemplate: checknothing, params: {value: x}"),
         f"{P}.value", "unknown field in checknothing.InstanceParam"),
    Case("instance-params-of-other-template", "instance",
         instance("compiledTemplate: listentry, params: {dimensions: {a: b}}"), f"{P}.dimensions",
         "unknown field in listentry.InstanceParam"),
    Case("instance-bindings", "instance", instance("compiledTemplate: checknothing, attributeBindings: [a]"),
         "spec.attributeBindings", "must be a map"),
    # --- 1.0 per-template kinds: the spec is the params
    Case("listentry-kind-typo", "listentry", "{value: 'sourc.labels[\"version\"]'}", "spec.value", "sourc.labels"),
    Case("listentry-kind-empty", "listentry", "{}", "spec.value", "an expression is required"),
    Case("quota-kind-typo", "quota", "{dimensions: {destination: 'destination.labels[\"app\"] | destinaton.service'}}",
         "spec.dimensions[destination]", "destinaton.service"),
    Case("checknothing-kind-field", "checknothing", "{value: x}", "spec.value",
         "unknown field in checknothing.InstanceParam"),
    # --- QuotaSpec
    Case("quota-spec-no-rules", "QuotaSpec", "{}", "spec.rules", "at least one rule is required"),
    Case("quota-spec-no-quotas", "QuotaSpec", quota_rule("match: [{clause: {request.path: {prefix: /a}}}]"),
         f"{R0}.quotas", "at least one quota is required"),
    Case("quota-spec-no-quota-name", "QuotaSpec", quota_rule("quotas: [{charge: 1}]"), f"{R0}.quotas[0].quota",
         "the name of the quota instance to charge is required"),
    Case("quota-spec-charge-zero", "QuotaSpec", quota_rule("quotas: [{quota: requestcount, charge: 0}]"),
         f"{R0}.quotas[0].charge", "charge 0 must be greater than 0"),
    Case("quota-spec-charge-missing", "QuotaSpec", quota_rule("quotas: [{quota: requestcount}]"),
         f"{R0}.quotas[0].charge", "charge must be greater than 0"),
    Case("quota-spec-charge-string", "QuotaSpec", quota_rule("quotas: [{quota: requestcount, charge: one}]"),
         f"{R0}.quotas[0].charge", "must be an integer"),
    Case("quota-spec-quota-kind", "QuotaSpec", quota_rule("quotas: [{quota: appversion.listentry, charge: 1}]"),
         f"{R0}.quotas[0].quota", "is a listentry instance; a QuotaSpec charges quota instances"),
    Case("quota-spec-quota-name", "QuotaSpec", quota_rule("quotas: [{quota: 'request count', charge: 1}]"),
         f"{R0}.quotas[0].quota", "is not a resource name"),
    Case("quota-spec-exact-empty", "QuotaSpec",
         quota_rule("match: [{clause: {request.path: {exact: ''}}}], quotas: [{quota: q, charge: 1}]"),
         f"{CLAUSE}.exact", "exact must not be empty"),
    Case("quota-spec-prefix-empty", "QuotaSpec",
         quota_rule("match: [{clause: {request.path: {prefix: ''}}}], quotas: [{quota: q, charge: 1}]"),
         f"{CLAUSE}.prefix", "prefix must not be empty"),
    Case("quota-spec-regex", "QuotaSpec",
         quota_rule("match: [{clause: {request.path: {regex: '/books/(a'}}}], quotas: [{quota: q, charge: 1}]"),
         f"{CLAUSE}.regex", "invalid RE2 regex"),
    Case("quota-spec-two-matchers", "QuotaSpec",
         quota_rule("match: [{clause: {request.path: {exact: /a, prefix: /b}}}], quotas: [{quota: q, charge: 1}]"),
         CLAUSE, "only one of exact, prefix, regex may be set"),
    # The proto's own comment shows string_prefix/string_exact, which the API never had.
    Case("quota-spec-string-prefix", "QuotaSpec",
         quota_rule("match: [{clause: {request.path: {string_prefix: /books}}}], quotas: [{quota: q, charge: 1}]"),
         f"{CLAUSE}.string_prefix", "unknown field in QuotaSpec.StringMatch"),
    # --- QuotaSpecBinding
    Case("binding-no-services", "QuotaSpecBinding", binding("[]"), "spec.services",
         "at least one service is required"),
    Case("binding-no-specs", "QuotaSpecBinding", "{services: [{name: productpage}]}", "spec.quotaSpecs",
         "at least one QuotaSpec is required"),
    Case("binding-empty-specs", "QuotaSpecBinding", binding("[{name: productpage}]", "[]"), "spec.quotaSpecs",
         "at least one QuotaSpec is required"),
    Case("binding-service-empty", "QuotaSpecBinding", binding("[{namespace: default}]"), "spec.services[0]",
         "name or service is required"),
    Case("binding-service-both", "QuotaSpecBinding", binding("[{name: productpage, service: '*'}]"),
         "spec.services[0]", "set either name or service, not both"),
    Case("binding-service-namespace", "QuotaSpecBinding", binding("[{service: '*', namespace: default}]"),
         "spec.services[0].namespace", "namespace is not allowed when service is set"),
    Case("binding-service-domain", "QuotaSpecBinding", binding("[{service: '*', domain: cluster.local}]"),
         "spec.services[0].domain", "domain is not allowed when service is set"),
    Case("binding-service-fqdn", "QuotaSpecBinding", binding("[{service: 'productpage.*.svc.cluster.local'}]"),
         "spec.services[0].service", "is not a DNS-1123 label"),
    Case("binding-name-label", "QuotaSpecBinding", binding("[{name: productpage.default}]"),
         "spec.services[0].name", "must be a DNS-1123 label"),
    Case("binding-namespace-label", "QuotaSpecBinding", binding("[{name: productpage, namespace: my_ns}]"),
         "spec.services[0].namespace", "must be a DNS-1123 label"),
    Case("binding-domain", "QuotaSpecBinding", binding("[{name: productpage, domain: 'svc..local'}]"),
         "spec.services[0].domain", "is invalid"),
    Case("binding-labels", "QuotaSpecBinding", binding("[{name: productpage, labels: {version: 'v 1'}}]"),
         "spec.services[0].labels[version]", "invalid label value"),
    Case("binding-spec-no-name", "QuotaSpecBinding", binding("[{name: productpage}]", "[{namespace: istio-system}]"),
         "spec.quotaSpecs[0].name", "the QuotaSpec's name is required"),
    Case("binding-spec-namespace", "QuotaSpecBinding",
         binding("[{name: productpage}]", "[{name: request-count, namespace: Istio_System}]"),
         "spec.quotaSpecs[0].namespace", "must be a DNS-1123 label"),
    Case("binding-spec-name", "QuotaSpecBinding", binding("[{name: productpage}]", "[{name: Request_Count}]"),
         "spec.quotaSpecs[0].name", "is not a resource name"),
]


def _assert_rejected(case: Case) -> None:
    result = parse(case.kind, case.spec, name=case.name, api_version=API_VERSION)
    assert not result.resources, f"{case.id}: accepted, expected an error at {case.path}"
    assert not result.unsupported, f"{case.id}: {API_VERSION} {case.kind} reported as unsupported"
    assert len(result.invalid) == 1, result.errors()
    lines = result.invalid[0].lines()
    prefix = f"{case.kind} default/{case.name}: {case.path}: "
    matching = [line for line in lines if line.startswith(prefix) and case.reason in line]
    assert matching, f"{case.id}: no error '{prefix}...{case.reason}...' among:\n" + "\n".join(lines)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_rejected(case: Case) -> None:
    _assert_rejected(case)


def test_case_ids_are_unique() -> None:
    assert len({case.id for case in CASES}) == len(CASES)


def test_an_expression_error_is_cexls_own_message() -> None:
    """A typo is refused at apply time with CEXL's message (`position N: reason`), at the field."""
    from libs.cexl import CexlError
    from libs.cexl import check as type_of

    expression = 'destination.labels["app"] == "ratings" && sourc.labels["app"] == "reviews"'
    with pytest.raises(CexlError) as raised:
        type_of(expression)
    result = parse("rule", f"{{match: '{expression}', {ACTION}}}", api_version=API_VERSION)
    assert result.invalid[0].lines() == [f"rule default/demo: spec.match: {raised.value}"]
    assert str(raised.value).startswith("position ")


# --- warnings: accepted, but reported ------------------------------------------------------

_OVERRIDE_NO_DURATION = MEMQUOTA % f"{{{QUOTA_OK}, overrides: [{{dimensions: {{a: b}}, maxAmount: 2}}]}}"
_SHORT_QUOTA_NAME = MEMQUOTA % "{name: requestcount, maxAmount: 5, validDuration: 1s}"
_FIXED_WINDOW_BUCKET = REDIS % f"{{{QUOTA_OK}, bucketDuration: 100ms}}"

WARNINGS = [
    ("handler", "{adapter: my-oop-adapter, params: {anything: [1, 2]}, connection: {address: 'oop:8080'}}",
     "spec.adapter", "out-of-process adapter 'my-oop-adapter' is not supported"),
    ("handler", "{compiledAdapter: denier, adapter: denier}", "spec.adapter", "ignored: compiledAdapter is set"),
    ("handler", "{compiledAdapter: denier, connection: {address: 'x:1'}}", "spec.connection",
     "ignored: connection is for out-of-process adapters"),
    ("handler", "{name: other, compiledAdapter: denier}", "spec.name", "ignored"),
    ("handler", "{compiledAdapter: denier, params: {status: {code: 0}}}", "spec.params.status.code",
     "code 0 is OK: this denier lets every request through"),
    ("handler", "{compiledAdapter: listchecker, params: {blacklist: false}}", "spec.params",
     "the list is empty, so this whitelist denies every request"),
    ("listchecker", "{blacklist: true}", "spec", "the list is empty, so this blacklist allows every request"),
    ("handler", handler(_OVERRIDE_NO_DURATION), "spec.params.quotas[0].overrides[0].validDuration",
     "Mixer made such an override a non-expiring allocation"),
    ("handler", handler(_SHORT_QUOTA_NAME), "spec.params.quotas[0].name", "fully qualified name"),
    ("handler", handler(_FIXED_WINDOW_BUCKET), "spec.params.quotas[0].bucketDuration",
     "bucketDuration is ignored with FIXED_WINDOW"),
    ("instance", "{template: mytemplate, params: {x: y}}", "spec.template",
     "template 'mytemplate' is not supported"),
    ("instance", "{compiledTemplate: checknothing, attributeBindings: {source.namespace: $out.ns}}",
     "spec.attributeBindings", "ignored: only attribute-generating templates produce attributes"),
    ("rule", f"{{{ACTION}, requestHeaderOperations: [{{name: x-a, operation: REMOVE, values: ['\"a\"']}}]}}",
     "spec.requestHeaderOperations[0].values", "values are ignored when operation is REMOVE"),
    ("QuotaSpec", "{rules: [{match: [{clause: {request.path: {}}}], quotas: [{quota: q, charge: 1}]}]}",
     "spec.rules[0].match[0].clause[request.path]", "empty string match matches everything"),
]


@pytest.mark.parametrize(("kind", "spec", "path", "reason"), WARNINGS,
                         ids=[f"{i}-{w[0]}-{w[2]}" for i, w in enumerate(WARNINGS)])
def test_warnings(kind: str, spec: str, path: str, reason: str) -> None:
    result = parse(kind, spec, api_version=API_VERSION)
    assert result.errors() == []
    (_, resource), = result.resources
    assert [w.path for w in warnings_of(resource) if reason in w.reason] == [path], warnings_of(resource)
