"""envoyproxy/ratelimit's configuration: the ConfigMap `ratelimit-config` as galley reads
it, refused by field, and the lookups the policy service makes with it."""

from __future__ import annotations

import pytest
import yaml

from libs.config import RATELIMIT_CONFIG_KIND, parse_text
from libs.config.ratelimit import RateLimit, RateLimitConfigError, RateLimits, combine, parse

TASK = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: ratelimit-config
data:
  config.yaml: |
    domain: ratelimit
    descriptors:
      - key: PATH
        value: "/productpage"
        rate_limit: {unit: minute, requests_per_unit: 1}
      - key: PATH
        rate_limit: {unit: minute, requests_per_unit: 100}
"""


def test_istios_task_configmap_is_a_ratelimit_config() -> None:
    result = parse_text(TASK, "task.yaml")
    assert result.errors() == []
    [(_, resource)] = result.resources
    assert (resource.kind, resource.namespace, resource.name) == (RATELIMIT_CONFIG_KIND, "default", "ratelimit-config")
    assert resource.spec["configs"]["config.yaml"]["domain"] == "ratelimit"


def test_other_configmaps_are_not_config() -> None:
    result = parse_text(TASK.replace("name: ratelimit-config", "name: app-settings"), "other.yaml")
    assert result.resources == [] and result.errors() == [] and len(result.unsupported) == 1


@pytest.mark.parametrize(("change", "path", "reason"), [
    ("unit: minute, requests_per_unit: 1", "data.config.yaml.descriptors[0].rate_limit.unit",
     "'fortnight' is not one of second"),
    ("requests_per_unit: 1}", "data.config.yaml.descriptors[0].rate_limit.requests_per_unit",
     "required, a whole number >= 0"),
    ("- key: PATH\n        value: \"/productpage\"", "data.config.yaml.descriptors[0].value", "must be a string"),
    ("domain: ratelimit", "data.config.yaml.domain", "required, a non-empty string"),
    ("rate_limit: {unit: minute, requests_per_unit: 100}", "data.config.yaml.descriptors[1]",
     "duplicate descriptor PATH=/productpage"),
])
def test_a_broken_configuration_is_refused_by_field(change: str, path: str, reason: str) -> None:
    broken = {
        "unit: minute, requests_per_unit: 1": "unit: fortnight, requests_per_unit: 1",
        "requests_per_unit: 1}": "requests_per_unit: -1}",
        "- key: PATH\n        value: \"/productpage\"": "- key: PATH\n        value: [1]",
        "domain: ratelimit": "domain: ''",
        "rate_limit: {unit: minute, requests_per_unit: 100}": "value: /productpage",
    }[change]
    text = TASK.replace(change, broken, 1)
    assert text != TASK
    errors = parse_text(text, "task.yaml").errors()
    assert any(path in error and reason in error for error in errors), errors


def test_two_entries_may_not_define_one_domain() -> None:
    text = TASK + "  other.yaml: |\n    domain: ratelimit\n"
    [error] = parse_text(text, "task.yaml").errors()
    assert "data.other.yaml.domain: 'ratelimit' is already defined in data.config.yaml" in error


def limits(document: str) -> RateLimits:
    found, problems = combine([("test", yaml.safe_load(document))])
    assert problems == []
    return found


NESTED = """\
domain: users
descriptors:
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 2}
    descriptors:
      - key: PATH
        value: /admin
        rate_limit: {unit: second, requests_per_unit: 1}
  - key: user
    value: robot
    unlimited: true
  - key: user
    value: "shadow-*"
    shadow_mode: true
    rate_limit: {unit: hour, requests_per_unit: 5}
"""


def test_lookups_walk_the_tree_exact_then_prefix_then_any_value() -> None:
    found = limits(NESTED)
    ann = found.find("users", [("user", "ann")])
    assert (ann.limit, ann.key, ann.shadow) == (RateLimit(2, "minute"), "users_user_ann", False)
    admin = found.find("users", [("user", "ann"), ("PATH", "/admin")])
    assert (admin.limit, admin.key) == (RateLimit(1, "second"), "users_user_ann_PATH_/admin")
    assert found.find("users", [("user", "robot")]).limit is None
    shadow = found.find("users", [("user", "shadow-7")])
    assert (shadow.limit, shadow.shadow) == (RateLimit(5, "hour"), True)


def test_a_descriptor_the_tree_does_not_cover_has_no_limit() -> None:
    found = limits(NESTED)
    assert found.find("users", [("user", "ann"), ("PATH", "/other")]).limit is None
    assert found.find("users", [("team", "x")]).limit is None
    assert found.find("nobody", [("user", "ann")]).limit is None
    assert found.find("users", []).limit is None


def test_parse_names_the_field() -> None:
    with pytest.raises(RateLimitConfigError) as raised:
        parse({"domain": "d", "descriptors": [{"key": "k", "rate_limit": {"unit": "minute"}}]}, "data.x")
    assert raised.value.path == "data.x.descriptors[0].rate_limit.requests_per_unit"
    with pytest.raises(RateLimitConfigError, match="unknown field"):
        parse({"domain": "d", "descriptor": []})
    with pytest.raises(RateLimitConfigError, match="cannot be set with `unlimited: true`"):
        parse({"domain": "d", "descriptors": [{"key": "k", "unlimited": True,
                                               "rate_limit": {"unit": "second", "requests_per_unit": 1}}]})
