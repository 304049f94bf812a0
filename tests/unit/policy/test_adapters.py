"""Mixer's adapters as the policy service runs them, pure: what denier and listchecker answer
(and for how long the answer holds), how a fetched list lives and dies, and how memquota
counts.  Clocks are injected; nothing sleeps.  redisquota needs a real Redis and is judged in
tests/integration/policy."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from services.policy.adapters.denier import Denier
from services.policy.adapters.listchecker import ListChecker, ListError
from services.policy.adapters.quota import Limit, MemoryCounts, QuotaHandler, Window
from services.policy.adapters.results import CheckResult
from services.policy.status import NOT_FOUND, OK, PERMISSION_DENIED, UNAVAILABLE, Status

INVALID_ARGUMENT = 3


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- denier ----------------------------------------------------------------------------------


def test_denier_defaults_to_mixers_failed_precondition_for_5s_and_1000_uses() -> None:
    assert Denier.from_params({}).check({}) == CheckResult(Status(9, ""), 5.0, 1000)


def test_denier_answers_its_configured_status_duration_and_use_count() -> None:
    denier = Denier.from_params({"status": {"code": 9, "message": "not today"}, "validDuration": "30s",
                                 "validUseCount": 7})
    assert denier.check({"value": "anything"}) == CheckResult(Status(9, "not today"), 30.0, 7)


def test_denier_with_a_status_but_no_code_still_denies() -> None:
    assert Denier.from_params({"status": {"message": "Not allowed"}}).check({}).status == Status(9, "Not allowed")


# --- listchecker: entry types ----------------------------------------------------------------


def whitelist(*entries: str, entry_type: str = "STRINGS") -> ListChecker:
    return ListChecker.from_params({"overrides": list(entries), "entryType": entry_type})


def code(checker: ListChecker, value: object) -> int:
    return checker.check({"value": value}).status.code


def test_strings_match_exactly() -> None:
    versions = whitelist("v1", "v2")
    assert (code(versions, "v1"), code(versions, "v2")) == (OK, OK)
    assert (code(versions, "V1"), code(versions, "v1 "), code(versions, "v3")) == (NOT_FOUND,) * 3


def test_case_insensitive_strings_ignore_case_both_ways() -> None:
    users = whitelist("Jason", "ADMIN", entry_type="CASE_INSENSITIVE_STRINGS")
    assert (code(users, "jason"), code(users, "admin"), code(users, "AdMiN")) == (OK, OK, OK)
    assert code(users, "jasonx") == NOT_FOUND


def test_ip_addresses_match_addresses_and_cidrs() -> None:
    addresses = whitelist("10.57.0.0/16", "192.168.1.7", "2001:db8::/32", entry_type="IP_ADDRESSES")
    assert code(addresses, ipaddress.ip_address("10.57.3.4")) == OK
    assert code(addresses, "10.57.255.255") == OK
    assert code(addresses, "192.168.1.7") == OK
    assert code(addresses, "2001:db8::1") == OK
    assert (code(addresses, "10.58.0.1"), code(addresses, "192.168.1.8")) == (NOT_FOUND, NOT_FOUND)


def test_ip_addresses_answer_invalid_argument_for_a_value_that_is_no_address() -> None:
    result = whitelist("10.0.0.0/8", entry_type="IP_ADDRESSES").check({"value": "not-an-ip"})
    assert result.status == Status(INVALID_ARGUMENT, "'not-an-ip' is not an IP address")
    # Like any other answer of the list, it holds for the caching interval.
    assert (result.valid_duration_s, result.valid_use_count) == (300.0, 10000)


def test_an_ip_list_entry_that_is_no_address_is_refused() -> None:
    with pytest.raises(ListError, match="not an IP address or CIDR"):
        whitelist("10.0.0.0/8", "ten.dot.zero", entry_type="IP_ADDRESSES")


def test_regex_entries_must_match_the_whole_value() -> None:
    versions = whitelist("v[0-9]+", "canary-.*", entry_type="REGEX")
    assert (code(versions, "v1"), code(versions, "v12"), code(versions, "canary-a")) == (OK, OK, OK)
    assert (code(versions, "xv1"), code(versions, "v1x"), code(versions, "v")) == (NOT_FOUND,) * 3


def test_a_regex_entry_re2_cannot_compile_is_refused() -> None:
    with pytest.raises(ListError, match="RE2"):
        whitelist("(unclosed", entry_type="REGEX")


# --- listchecker: whitelist, blacklist, caching ------------------------------------------------


def test_whitelist_answers_not_found_for_values_missing_from_it() -> None:
    result = whitelist("v1", "v2").check({"value": "v3"})
    assert result == CheckResult(Status(NOT_FOUND, "v3 is not whitelisted"), 300.0, 10000)
    assert result.status.http == 404 and result.status.body("whitelist.handler.default") == (
        "NOT_FOUND:whitelist.handler.default:v3 is not whitelisted")


def test_blacklist_answers_permission_denied_for_values_on_it() -> None:
    blacklist = ListChecker.from_params({"overrides": ["10.0.0.9"], "entryType": "IP_ADDRESSES", "blacklist": True})
    denied = blacklist.check({"value": ipaddress.ip_address("10.0.0.9")})
    assert denied.status == Status(PERMISSION_DENIED, "10.0.0.9 is blacklisted")
    assert denied.status.http == 403
    assert blacklist.check({"value": "10.0.0.10"}).status == Status()


def test_caching_interval_and_use_count_are_params() -> None:
    checker = ListChecker.from_params({"overrides": ["v1"], "cachingInterval": "10s", "cachingUseCount": 3})
    assert checker.check({"value": "v1"}) == CheckResult(Status(), 10.0, 3)
    assert checker.check({"value": "v2"}).valid_duration_s == 10.0


def test_a_list_ignores_blank_lines_and_comments() -> None:
    checker = ListChecker(overrides=[], provider_url="http://lists.example/versions")
    checker.install(b"# versions allowed\n\nv1\n   \n  v2  \n")
    assert (code(checker, "v1"), code(checker, "v2")) == (OK, OK)
    assert code(checker, "# versions allowed") == NOT_FOUND


# --- listchecker: a list fetched from providerUrl --------------------------------------------


def fetched(clock: Clock, *overrides: str, ttl_s: float = 300.0) -> ListChecker:
    return ListChecker(overrides=list(overrides), provider_url="http://lists.example/versions", ttl_s=ttl_s,
                       clock=clock)


def test_a_list_never_fetched_is_unavailable_not_an_answer() -> None:
    result = fetched(Clock()).check({"value": "v1"})
    assert result == CheckResult(Status(UNAVAILABLE, "list from http://lists.example/versions is not available"), 0, 0)
    assert result.status.http == 503


def test_install_reports_whether_the_list_changed_and_merges_the_overrides() -> None:
    checker = fetched(Clock(), "v9")
    assert checker.install(b"v1\nv2\n") is True
    assert (code(checker, "v1"), code(checker, "v9"), code(checker, "v3")) == (OK, OK, NOT_FOUND)
    assert checker.install(b"v1\nv2\n") is False
    assert checker.install(b"v3\n") is True
    assert (code(checker, "v1"), code(checker, "v3"), code(checker, "v9")) == (NOT_FOUND, OK, OK)


def test_a_list_not_refreshed_within_its_ttl_is_dropped() -> None:
    clock = Clock(1000.0)
    checker = fetched(clock, ttl_s=10.0)
    checker.install(b"v1\n")
    clock.now = 1010.0
    assert code(checker, "v1") == OK
    clock.now = 1010.5
    assert checker.check({"value": "v1"}).status.code == UNAVAILABLE
    # Dropped for good: time going on does not bring it back, a fetch does.
    assert code(checker, "v1") == UNAVAILABLE
    assert checker.install(b"v1\n") is True
    assert code(checker, "v1") == OK


def test_an_unchanged_fetch_counts_as_a_refresh() -> None:
    clock = Clock(1000.0)
    checker = fetched(clock, ttl_s=10.0)
    checker.install(b"v1\n")
    clock.now = 1008.0
    assert checker.install(b"v1\n") is False
    clock.now = 1015.0
    assert code(checker, "v1") == OK


def test_an_unreadable_fetch_is_refused_and_keeps_the_last_list() -> None:
    checker = ListChecker(overrides=[], entry_type="IP_ADDRESSES", provider_url="http://lists.example/ips",
                          clock=Clock())
    checker.install(b"10.0.0.0/8\n")
    with pytest.raises(ListError):
        checker.install(b"10.0.0.0/8\nnot-an-address\n")
    assert code(checker, "10.1.2.3") == OK


def test_an_unreadable_fetch_does_not_extend_the_last_lists_ttl() -> None:
    clock = Clock(1000.0)
    checker = ListChecker(overrides=[], entry_type="IP_ADDRESSES", provider_url="http://lists.example/ips",
                          ttl_s=10.0, clock=clock)
    checker.install(b"10.0.0.0/8\n")
    clock.now = 1008.0
    with pytest.raises(ListError):
        checker.install(b"not-an-address\n")
    clock.now = 1015.0
    assert code(checker, "10.1.2.3") == UNAVAILABLE


def test_list_params_are_read_from_mixers_names() -> None:
    checker = ListChecker.from_params({"providerUrl": "http://lists.example/v", "refreshInterval": "30s",
                                       "ttl": "2m", "entryType": "REGEX", "blacklist": True})
    assert (checker.provider_url, checker.refresh_s, checker.ttl_s, checker.entry_type, checker.blacklist) == (
        "http://lists.example/v", 30.0, 120.0, "REGEX", True)


# --- memquota --------------------------------------------------------------------------------

QUOTA = "requestcount.instance.istio-system"
# Istio's ratelimit sample's handler params (mixer-rule-productpage-ratelimit.yaml).
SAMPLE: dict[str, Any] = {"quotas": [{
    "name": QUOTA, "maxAmount": 500, "validDuration": "1s",
    "overrides": [
        {"dimensions": {"destination": "reviews"}, "maxAmount": 1, "validDuration": "5s"},
        {"dimensions": {"destination": "productpage", "source": "10.28.11.20"}, "maxAmount": 500,
         "validDuration": "1s"},
        {"dimensions": {"destination": "productpage"}, "maxAmount": 2, "validDuration": "5s"},
    ]}]}


def memquota(params: dict[str, Any], clock: Clock) -> QuotaHandler:
    return QuotaHandler.memquota(params, MemoryCounts(clock=clock))


async def granted(handler: QuotaHandler, times: int, dimensions: dict[str, str], amount: int = 1) -> list[bool]:
    return [await handler.allocate(QUOTA, dimensions, amount) for _ in range(times)]


async def test_memquota_grants_up_to_max_amount_per_window() -> None:
    clock = Clock(1000.05)
    handler = memquota({"quotas": [{"name": QUOTA, "maxAmount": 3, "validDuration": "1s"}]}, clock)
    assert await granted(handler, 4, {"destination": "ratings"}) == [True, True, True, False]
    clock.now = 1000.55
    assert await granted(handler, 1, {"destination": "ratings"}) == [False]
    clock.now = 1001.06
    assert await granted(handler, 4, {"destination": "ratings"}) == [True, True, True, False]


async def test_memquota_counts_expire_a_window_after_they_were_taken() -> None:
    # A rolling window, in tenths of validDuration: no burst of twice the limit at a boundary.
    clock = Clock(1000.05)
    handler = memquota({"quotas": [{"name": QUOTA, "maxAmount": 3, "validDuration": "1s"}]}, clock)
    assert await granted(handler, 2, {}) == [True, True]
    clock.now = 1000.55
    assert await granted(handler, 2, {}) == [True, False]
    clock.now = 1001.06
    assert await granted(handler, 3, {}) == [True, True, False]


async def test_memquota_counts_each_set_of_dimensions_apart() -> None:
    handler = memquota({"quotas": [{"name": QUOTA, "maxAmount": 1, "validDuration": "1s"}]}, Clock())
    assert await granted(handler, 2, {"destination": "ratings", "source": "a"}) == [True, False]
    assert await granted(handler, 2, {"destination": "ratings", "source": "b"}) == [True, False]


async def test_memquota_overrides_apply_by_dimensions_first_match_wins() -> None:
    clock = Clock(1000.0)
    handler = memquota(SAMPLE, clock)
    assert await granted(handler, 2, {"destination": "reviews", "source": "x"}) == [True, False]
    assert await granted(handler, 3, {"destination": "productpage", "source": "10.0.0.1"}) == [True, True, False]
    assert await granted(handler, 5, {"destination": "productpage", "source": "10.28.11.20"}) == [True] * 5
    assert await granted(handler, 5, {"destination": "ratings", "source": "x"}) == [True] * 5


async def test_an_override_with_its_own_valid_duration_resets_on_its_own_window() -> None:
    clock = Clock(1000.05)
    handler = memquota(SAMPLE, clock)
    assert await granted(handler, 2, {"destination": "reviews"}) == [True, False]
    clock.now = 1004.9
    assert await granted(handler, 1, {"destination": "reviews"}) == [False]
    clock.now = 1005.1
    assert await granted(handler, 2, {"destination": "reviews"}) == [True, False]


async def test_memquota_grants_an_amount_whole_or_not_at_all() -> None:
    handler = memquota({"quotas": [{"name": QUOTA, "maxAmount": 5, "validDuration": "1s"}]}, Clock())
    assert await handler.allocate(QUOTA, {}, 3) is True
    assert await handler.allocate(QUOTA, {}, 3) is False
    # The refused 3 took nothing: the 2 left are still there.
    assert await handler.allocate(QUOTA, {}, 2) is True
    assert await handler.allocate(QUOTA, {}, 1) is False


async def test_memquota_refuses_an_amount_larger_than_the_limit() -> None:
    handler = memquota({"quotas": [{"name": QUOTA, "maxAmount": 5, "validDuration": "1s"}]}, Clock())
    assert await handler.allocate(QUOTA, {}, 6) is False
    assert await handler.allocate(QUOTA, {}, 5) is True


async def test_a_quota_the_handler_does_not_define_is_not_limited() -> None:
    handler = memquota({"quotas": [{"name": QUOTA, "maxAmount": 0, "validDuration": "1s"}]}, Clock())
    assert await handler.allocate("other.instance.istio-system", {}, 1_000_000) is True
    assert await handler.allocate(QUOTA, {}, 1) is False


async def test_an_aligned_window_resets_on_the_clock_and_a_from_first_one_a_length_after_its_first_take() -> None:
    clock = Clock(59.9)
    counts = MemoryCounts(clock=clock)
    limit = Limit(max_amount=1, valid_duration_s=60.0)
    assert await counts.take("aligned", 1, limit, Window.ALIGNED) is True
    assert await counts.take("from-first", 1, limit, Window.FROM_FIRST) is True
    clock.now = 60.1
    # envoyproxy/ratelimit's minute is a calendar minute: a new one has begun.
    assert await counts.take("aligned", 1, limit, Window.ALIGNED) is True
    # redisquota's FIXED_WINDOW runs 60 s from its first allocation, at 59.9.
    assert await counts.take("from-first", 1, limit, Window.FROM_FIRST) is False
    clock.now = 119.8
    assert await counts.take("from-first", 1, limit, Window.FROM_FIRST) is False
    clock.now = 119.9
    assert await counts.take("from-first", 1, limit, Window.FROM_FIRST) is True
