"""Istio's capture rules as data: the local mesh's default unchanged, and each
traffic.sidecar.istio.io setting changing exactly its part, as istio-iptables does."""

from __future__ import annotations

import pytest

from libs.capture import (
    CaptureSettings,
    capture_rules,
    format_list,
    parse_ip_ranges,
    parse_ip_ranges_or_all,
    parse_ports,
    parse_ports_or_all,
)
from services.agent.capture import build_parser, main, settings_from
from tests.unit.capture.default_rules import DEFAULT


def lines(settings: CaptureSettings) -> list[str]:
    return [" ".join(rule) for rule in capture_rules(settings)]


def test_default_rules_are_unchanged() -> None:
    assert lines(CaptureSettings()) == DEFAULT.strip().splitlines()


def test_inbound_port_list_redirects_only_those_ports() -> None:
    rules = lines(CaptureSettings(include_inbound_ports=(80, 443)))
    inbound = [r for r in rules if "ISTIO_INBOUND" in r and "-N" not in r]
    assert inbound == ["-t nat -A PREROUTING -p tcp -j ISTIO_INBOUND",
                       "-t nat -A ISTIO_INBOUND -p tcp --dport 80 -j ISTIO_IN_REDIRECT",
                       "-t nat -A ISTIO_INBOUND -p tcp --dport 443 -j ISTIO_IN_REDIRECT"]


def test_no_inbound_ports_means_no_inbound_capture() -> None:
    assert not [r for r in lines(CaptureSettings(include_inbound_ports=())) if "PREROUTING" in r]


def test_excluded_inbound_ports_join_the_skipped_ones_once() -> None:
    rules = lines(CaptureSettings(exclude_inbound_ports=(15020, 8081)))
    returns = [r.split("--dport ")[1].split()[0] for r in rules if "ISTIO_INBOUND -p tcp --dport" in r]
    assert returns == ["15000", "15020", "15021", "15090", "22", "8081"]


def test_outbound_ranges_and_ports() -> None:
    rules = lines(CaptureSettings(include_outbound_ip_ranges=("10.0.0.0/8",), exclude_outbound_ip_ranges=(
        "10.96.0.0/12",), exclude_outbound_ports=(3306,)))
    output = [r for r in rules if "-A ISTIO_OUTPUT" in r]
    # Excluded ports first, whoever connects; the destination rules last, excludes before includes.
    assert output[0] == "-t nat -A ISTIO_OUTPUT -p tcp --dport 3306 -j RETURN"
    assert output[-2:] == ["-t nat -A ISTIO_OUTPUT -d 10.96.0.0/12 -j RETURN",
                           "-t nat -A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT"]
    assert not [r for r in lines(CaptureSettings(include_outbound_ip_ranges=())) if r.endswith("-j ISTIO_REDIRECT")]


@pytest.mark.parametrize(("text", "expected"), [("*", "*"), ("", ()), ("80, 443,80", (80, 443))])
def test_port_lists(text: str, expected: object) -> None:
    assert parse_ports_or_all(text) == expected


@pytest.mark.parametrize("text", ["0", "65536", "http", "80;443", "-1"])
def test_bad_ports(text: str) -> None:
    with pytest.raises(ValueError, match="is not a port number"):
        parse_ports(text)


def test_ip_ranges() -> None:
    assert parse_ip_ranges("10.0.0.1/8, 192.168.1.1") == ("10.0.0.0/8", "192.168.1.1/32")
    assert parse_ip_ranges_or_all(" * ") == "*"
    assert format_list(parse_ip_ranges("10.0.0.0/8,172.16.0.0/12")) == "10.0.0.0/8,172.16.0.0/12"
    with pytest.raises(ValueError, match="IPv6"):
        parse_ip_ranges("::1/128")


def test_command_flags_are_istio_iptables_lists() -> None:
    args = build_parser().parse_args(["--include-inbound-ports", "", "--exclude-outbound-ports", "25,587",
                                      "--include-outbound-ip-ranges", "10.0.0.0/8"])
    settings = settings_from(args)
    assert (settings.include_inbound_ports, settings.exclude_outbound_ports) == ((), (25, 587))
    assert settings.include_outbound_ip_ranges == ("10.0.0.0/8",)
    assert settings_from(build_parser().parse_args([])) == CaptureSettings()


def test_dry_run_prints_the_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"iptables {line}" for line in DEFAULT.strip().splitlines()]


def test_a_bad_flag_names_itself(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--exclude-outbound-ports", "smtp"])
    assert "--exclude-outbound-ports: 'smtp' is not a port number" in capsys.readouterr().err
