"""Telemetry configs Istio rejects (or that cannot work), Istio's documented examples, and
the warnings Istio gives for Telemetry.

`cases.assert_rejected` writes every kind it does not know at networking.istio.io/v1, so the
rows here are run by `_assert_rejected`, once per Telemetry API version.
"""

from __future__ import annotations

import json
import textwrap

import pytest

from libs.config import parse_text, warnings_of
from tests.unit.config.cases import Case, parse

TEL = "Telemetry"
VERSIONS = ("telemetry.istio.io/v1alpha1", "telemetry.istio.io/v1")


def tracing(body: str) -> str:
    return f"{{tracing: [{{{body}}}]}}"


def tag(body: str) -> str:
    return tracing(f"customTags: {{team: {body}}}")


def override(body: str) -> str:
    return f"{{metrics: [{{overrides: [{{{body}}}]}}]}}"


def tag_override(body: str) -> str:
    return override(f"tagOverrides: {{response_code: {body}}}")


def access_log(body: str) -> str:
    return f"{{accessLogging: [{{{body}}}]}}"


TRACING = "spec.tracing[0]"
TAG = "spec.tracing[0].customTags[team]"
OVERRIDE = "spec.metrics[0].overrides[0]"
TAG_OVERRIDE = "spec.metrics[0].overrides[0].tagOverrides[response_code]"
FILTER = "spec.accessLogging[0].filter.expression"

CASES = [
    # --- selection: selector, targetRef, targetRefs
    Case("selector-and-target", TEL, "{selector: {matchLabels: {app: a}}, targetRef: {kind: Service, name: a}}",
         "spec", "only one of selector, targetRef or targetRefs"),
    Case("selector-and-target-refs", TEL,
         "{selector: {matchLabels: {app: a}}, targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, "
         "name: a}]}", "spec", "only one of selector, targetRef or targetRefs"),
    Case("target-ref-kind", TEL, "{targetRefs: [{group: apps, kind: Deployment, name: a}]}", "spec.targetRefs[0]",
         "not apps/Deployment"),
    Case("target-ref-no-name", TEL, "{targetRef: {kind: Service}}", "spec.targetRef.name", "must be set"),
    Case("selector-wildcard", TEL, "{selector: {matchLabels: {app: 'web-*'}}}", "spec.selector.matchLabels[app]",
         "wildcard is not supported"),
    # Early v1alpha1 docs wrote networking's `labels`; the API's WorkloadSelector has matchLabels.
    Case("selector-labels", TEL, "{selector: {labels: {app: a}}}", "spec.selector.labels", "unknown field"),
    # --- provider names
    Case("tracing-provider-empty", TEL, tracing("providers: [{name: ''}]"), f"{TRACING}.providers[0].name",
         "a provider name must be set"),
    Case("metrics-provider-missing", TEL, "{metrics: [{providers: [{}]}]}", "spec.metrics[0].providers[0].name",
         "a provider name must be set"),
    Case("access-log-provider-empty", TEL, access_log("providers: [{name: envoy}, {name: ''}]"),
         "spec.accessLogging[0].providers[1].name", "a provider name must be set"),
    # --- tracing: sampling, match
    Case("sampling-over-100", TEL, tracing("randomSamplingPercentage: 100.5"), f"{TRACING}.randomSamplingPercentage",
         "must be in the range 0-100"),
    Case("sampling-negative", TEL, tracing("randomSamplingPercentage: -1"), f"{TRACING}.randomSamplingPercentage",
         "must be in the range 0-100"),
    Case("sampling-nan", TEL, tracing("randomSamplingPercentage: .nan"), f"{TRACING}.randomSamplingPercentage",
         "must be in the range 0-100"),
    Case("sampling-string", TEL, tracing("randomSamplingPercentage: '10%'"), f"{TRACING}.randomSamplingPercentage",
         "must be a number"),
    Case("span-reporting-string", TEL, tracing("disableSpanReporting: 'yes'"), f"{TRACING}.disableSpanReporting",
         "must be true or false"),
    # The v1 proto's own example writes `match: CLIENT`; match is a message.
    Case("tracing-match-string", TEL, tracing("match: CLIENT"), f"{TRACING}.match", "must be an object"),
    Case("tracing-mode-enum", TEL, tracing("match: {mode: BOTH}"), f"{TRACING}.match.mode",
         "is not one of CLIENT_AND_SERVER, CLIENT, SERVER"),
    # --- tracing: custom tags
    Case("custom-tag-no-source", TEL, tag("{}"), TAG, "must set one of literal, environment or header"),
    Case("custom-tag-two-sources", TEL, tag("{literal: {value: a}, header: {name: x-team}}"), TAG,
         "only one of literal, environment, header may be set"),
    Case("custom-tag-literal-empty", TEL, tag("{literal: {}}"), f"{TAG}.literal.value", "non-empty value"),
    Case("custom-tag-literal-blank", TEL, tag("{literal: {value: ''}}"), f"{TAG}.literal.value", "non-empty value"),
    Case("custom-tag-environment-no-name", TEL, tag("{environment: {defaultValue: x}}"), f"{TAG}.environment.name",
         "needs the name of the variable"),
    Case("custom-tag-header-no-name", TEL, tag("{header: {name: '', defaultValue: x}}"), f"{TAG}.header.name",
         "needs the name of the header"),
    Case("custom-tag-empty-name", TEL, tracing("customTags: {'': {literal: {value: a}}}"), f"{TRACING}.customTags",
         "custom tag name must not be empty"),
    Case("custom-tag-metadata", TEL, tag("{metadata: {kind: request}}"), f"{TAG}.metadata", "unknown field"),
    # --- metrics: overrides
    Case("metric-and-custom-metric", TEL, override("match: {metric: REQUEST_COUNT, customMetric: foo}"),
         f"{OVERRIDE}.match", "only one of metric, customMetric may be set"),
    Case("custom-metric-empty", TEL, override("match: {customMetric: ''}"), f"{OVERRIDE}.match.customMetric",
         "must not be empty"),
    # Early v1alpha1 docs used REQUEST_BYTES/RESPONSE_BYTES; the enum says REQUEST_SIZE/RESPONSE_SIZE.
    Case("metric-enum", TEL, override("match: {metric: REQUEST_BYTES}"), f"{OVERRIDE}.match.metric",
         "is not one of ALL_METRICS, REQUEST_COUNT"),
    Case("metric-mode-enum", TEL, override("match: {mode: INBOUND}"), f"{OVERRIDE}.match.mode",
         "is not one of CLIENT_AND_SERVER"),
    Case("disabled-string", TEL, override("disabled: 'true'"), f"{OVERRIDE}.disabled", "must be true or false"),
    # --- metrics: tag overrides
    Case("tag-upsert-no-value", TEL, tag_override("{operation: UPSERT}"), f"{TAG_OVERRIDE}.value",
         "value must be set when operation is UPSERT"),
    Case("tag-upsert-empty-value", TEL, tag_override("{operation: UPSERT, value: ''}"), f"{TAG_OVERRIDE}.value",
         "value must be set when operation is UPSERT"),
    Case("tag-default-operation-no-value", TEL, tag_override("{}"), f"{TAG_OVERRIDE}.value",
         "UPSERT (the default operation)"),
    Case("tag-remove-with-value", TEL, tag_override("{operation: REMOVE, value: oops}"), f"{TAG_OVERRIDE}.value",
         "value must not be set when operation is REMOVE"),
    Case("tag-remove-with-empty-value", TEL, tag_override("{operation: REMOVE, value: ''}"),
         f"{TAG_OVERRIDE}.value", "value must not be set when operation is REMOVE"),
    Case("tag-operation-enum", TEL, tag_override("{operation: DELETE}"), f"{TAG_OVERRIDE}.operation",
         "is not one of UPSERT, REMOVE"),
    Case("tag-name-empty", TEL, override("tagOverrides: {'': {value: request.host}}"), f"{OVERRIDE}.tagOverrides",
         "tag name must not be empty"),
    # --- metrics: reporting interval
    Case("reporting-interval-zero", TEL, "{metrics: [{reportingInterval: 0s}]}", "spec.metrics[0].reportingInterval",
         "must be at least 1ms"),
    Case("reporting-interval-sub-ms", TEL, "{metrics: [{reportingInterval: 500us}]}",
         "spec.metrics[0].reportingInterval", "must be at least 1ms"),
    Case("reporting-interval-syntax", TEL, "{metrics: [{reportingInterval: often}]}",
         "spec.metrics[0].reportingInterval", "is not a duration"),
    # --- access logging
    Case("filter-no-expression", TEL, access_log("filter: {}"), FILTER, "must be set when filter is set"),
    Case("filter-blank-expression", TEL, access_log("filter: {expression: '  '}"), FILTER,
         "must be set when filter is set"),
    Case("filter-unclosed-paren", TEL, access_log("filter: {expression: \"response.code >= 400 && (request.host "
                                                  "== 'a'\"}"), FILTER, "'(' at character 25 is never closed"),
    Case("filter-extra-paren", TEL, access_log("filter: {expression: 'response.code >= 400)'}"), FILTER,
         "')' at character 21 closes nothing"),
    Case("filter-mismatched-bracket", TEL, access_log("filter: {expression: \"request.headers['x-a')\"}"), FILTER,
         "does not match '['"),
    Case("filter-unterminated-string", TEL, access_log("filter: {expression: \"request.host == 'a\"}"), FILTER,
         "string starting at character 17 is not terminated"),
    Case("access-log-disabled-string", TEL, access_log("disabled: 'no'"), "spec.accessLogging[0].disabled",
         "must be true or false"),
    # Early v1alpha1 docs showed a log_format field that the API does not have.
    Case("access-log-format", TEL, access_log("log_format: {body: {string_value: x}}"),
         "spec.accessLogging[0].log_format", "unknown field in Telemetry.AccessLogging"),
]


def _assert_rejected(case: Case, api_version: str) -> None:
    result = parse(case.kind, case.spec, name=case.name, api_version=api_version)
    assert not result.resources, f"{case.id}: accepted, expected an error at {case.path}"
    assert not result.unsupported, f"{case.id}: {api_version} {case.kind} reported as unsupported"
    assert len(result.invalid) == 1, result.errors()
    lines = result.invalid[0].lines()
    prefix = f"{case.kind} default/{case.name}: {case.path}: "
    matching = [line for line in lines if line.startswith(prefix) and case.reason in line]
    assert matching, f"{case.id}: no error '{prefix}...{case.reason}...' among:\n" + "\n".join(lines)


@pytest.mark.parametrize("api_version", VERSIONS)
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_rejected(case: Case, api_version: str) -> None:
    _assert_rejected(case, api_version)


# --- accepted ---------------------------------------------------------------------------------

# From istio/api telemetry/v1/telemetry.proto and istio.io's observability tasks.
DOCUMENTED_EXAMPLES = {
    "mesh-wide-tracing-sampling": """
        metadata: {name: mesh-default, namespace: istio-system}
        spec:
          # no selector specified, applies to all workloads
          tracing:
          - randomSamplingPercentage: 10.00
        """,
    "workload-access-logging-with-filter": """
        metadata: {name: filter-example, namespace: default}
        spec:
          selector:
            matchLabels:
              app: httpbin
          accessLogging:
          - providers:
            - name: envoy
            filter:
              expression: response.code >= 400
        """,
    "access-logging-filter-health-checks": """
        metadata: {name: disable-health-check-logging, namespace: foo}
        spec:
          accessLogging:
          - providers:
            - name: envoy
            filter:
              expression: >-
                !has(request.useragent) ||
                !(request.useragent.startsWith("Amazon-Route53-Health-Check-Service"))
        """,
    "client-request-count-disabled": """
        metadata: {name: remove-client-request-count, namespace: istio-system}
        spec:
          metrics:
          - providers:
            - name: prometheus
            overrides:
            - match:
                metric: REQUEST_COUNT
                mode: CLIENT
              disabled: true
        """,
    "remove-response-code-tag": """
        metadata: {name: remove-response-code, namespace: foo}
        spec:
          selector:
            matchLabels:
              service.istio.io/canonical-name: bar
          metrics:
          - providers:
            - name: prometheus
            overrides:
            - match:
                metric: REQUEST_COUNT
              tagOverrides:
                response_code:
                  operation: REMOVE
            - match:
                metric: REQUEST_DURATION
              tagOverrides:
                response_code:
                  operation: REMOVE
            - match:
                metric: REQUEST_SIZE
              tagOverrides:
                response_code:
                  operation: REMOVE
            - match:
                metric: RESPONSE_SIZE
              tagOverrides:
                response_code:
                  operation: REMOVE
        """,
    "namespace-metric-dimensions": """
        metadata: {name: namespace-metrics, namespace: foo}
        spec:
          metrics:
          - providers:
            - name: prometheus
            overrides:
            # match clause left off matches all istio metrics, client and server
            - tagOverrides:
                request_method:
                  value: "request.method"
                request_host:
                  value: "request.host"
        """,
    "custom-tag-literal": """
        metadata: {name: mesh-default, namespace: istio-system}
        spec:
          tracing:
          - randomSamplingPercentage: 10.00
            customTags:
              my_new_foo_tag:
                literal:
                  value: "foo"
        """,
    "disable-span-reporting": """
        metadata: {name: foo-tracing, namespace: bar}
        spec:
          selector:
            matchLabels:
              service.istio.io/canonical-name: foo
          tracing:
          - disableSpanReporting: true
        """,
    "namespace-no-access-log": """
        metadata: {name: namespace-no-log, namespace: foo}
        spec:
          accessLogging:
          - disabled: true
        """,
    # Istio's own CRD test data (pkg/config/validation/testdata/crds/telemetry-valid.yaml): every field.
    "every-field": """
        metadata: {name: full, namespace: default}
        spec:
          metrics:
          - providers:
            - name: prometheus
            reportingInterval: 5s
            overrides:
            - tagOverrides:
                request_method:
                  value: "request.method"
              match:
                customMetric: "foo"
              disabled: false
            - match:
                metric: GRPC_REQUEST_MESSAGES
              disabled: true
          accessLogging:
          - disabled: false
            filter:
              expression: 'true'
            match:
              mode: CLIENT
            providers:
            - name: stdout
          tracing:
          - providers:
            - name: otlp
            match:
              mode: CLIENT_AND_SERVER
            randomSamplingPercentage: 54.54
            useRequestIdForTraceSampling: true
            disableSpanReporting: false
            customTags:
              env:
                environment:
                  name: "NAME"
                  defaultValue: "default"
              header:
                header:
                  name: "x-name"
                  defaultValue: "default name"
        """,
    "waypoint-target-refs": """
        metadata: {name: waypoint-logs, namespace: foo}
        spec:
          targetRefs:
          - kind: Gateway
            group: gateway.networking.k8s.io
            name: waypoint
          accessLogging:
          - providers:
            - name: envoy
        """,
}


def _document(api_version: str, body: str) -> str:
    return f"apiVersion: {api_version}\nkind: Telemetry\n" + textwrap.dedent(body)


@pytest.mark.parametrize("api_version", VERSIONS)
@pytest.mark.parametrize("example", DOCUMENTED_EXAMPLES)
def test_documented_examples_are_accepted(example: str, api_version: str) -> None:
    result = parse_text(_document(api_version, DOCUMENTED_EXAMPLES[example]), f"{example}.yaml")
    assert result.errors() == [] and not result.unsupported
    (_, resource), = result.resources
    assert (resource.api_version, resource.kind) == (api_version, "Telemetry")
    assert warnings_of(resource) == []


def test_selector_in_the_root_namespace_is_accepted() -> None:
    """Istio lets a Telemetry in its root namespace select workloads."""
    text = _document("telemetry.istio.io/v1", """
        metadata: {name: gateways, namespace: istio-system}
        spec:
          selector: {matchLabels: {istio: ingressgateway}}
          tracing: [{randomSamplingPercentage: 100}]
        """)
    assert parse_text(text, "root.yaml").errors() == []


def test_spec_is_normalised() -> None:
    """snake_case names, enum numbers and Go durations become what Istio's JSON says."""
    result = parse(TEL, """
        tracing:
        - random_sampling_percentage: 5
          disable_span_reporting: true
          custom_tags: {team: {environment: {name: TEAM, default_value: none}}}
        metrics:
        - reporting_interval: 5000ms
          overrides: [{match: {metric: 1, mode: 2}, tag_overrides: {response_code: {operation: 1}}}]
        access_logging: [{match: {mode: CLIENT}, filter: {expression: "response.code >= 500"}}]
        """, api_version="telemetry.istio.io/v1")
    (_, resource), = result.resources
    assert resource.spec == {
        "tracing": [{"randomSamplingPercentage": 5, "disableSpanReporting": True,
                     "customTags": {"team": {"environment": {"name": "TEAM", "defaultValue": "none"}}}}],
        "metrics": [{"reportingInterval": "5s", "overrides": [{
            "match": {"metric": "REQUEST_COUNT", "mode": "SERVER"},
            "tagOverrides": {"response_code": {"operation": "REMOVE"}}}]}],
        "accessLogging": [{"match": {"mode": "CLIENT"}, "filter": {"expression": "response.code >= 500"}}],
    }
    assert type(resource).from_json(resource.to_json()) == resource


@pytest.mark.parametrize("expression", [
    "connection.mtls && request.url_path.contains('v1beta3')",
    "request.headers['x-user'] in ['a', 'b'] && {'k': 1}.size() == 1",
    "request.url_path.matches('^/api/(v1|v2)')",
    "request.host == \"a(\" || request.host == 'b]'",
    "r'\\d+' != '' && '''it's''' != \"\"",
    "response.code >= 400 // a comment with an unbalanced ( and a '",
])
def test_filter_brackets_inside_strings_and_comments_do_not_count(expression: str) -> None:
    # JSON is YAML, so json.dumps quotes the expression safely for the flow mapping.
    spec = f"{{accessLogging: [{{filter: {{expression: {json.dumps(expression)}}}}}]}}"
    assert parse(TEL, spec, api_version="telemetry.istio.io/v1").errors() == []


@pytest.mark.parametrize(("spec", "path", "reason"), [
    ("{tracing: [{randomSamplingPercentage: 1}, {match: {mode: CLIENT}}]}", "spec.tracing",
     "multiple tracing entries are not currently supported"),
    ("{tracing: [{providers: [{name: zipkin}, {name: otel}]}]}", "spec.tracing[0].providers",
     "only a single provider per tracing entry"),
])
def test_istio_warnings(spec: str, path: str, reason: str) -> None:
    (_, resource), = parse(TEL, spec, api_version="telemetry.istio.io/v1").resources
    assert [w.path for w in warnings_of(resource) if reason in w.reason] == [path]
