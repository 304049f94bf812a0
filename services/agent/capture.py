"""`python -m services.agent.capture`: the injected `istio-init` container's command.

Mizzen's `pilot-agent istio-iptables`: installs Istio's capture rules (`libs.capture`, the
same rules the local mesh's `--capture iptables` uses) in the pod's network namespace with
`iptables`, once, as root with NET_ADMIN, before the app and its sidecar start.  Rules of an
earlier run (a restarted init container) are removed first, so a rerun leaves one set.
The flags take istio-iptables' lists: comma-separated, "*" for all, "" for none.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

from libs.capture import (
    CaptureSettings,
    capture_rules,
    cleanup_rules,
    parse_ip_ranges,
    parse_ip_ranges_or_all,
    parse_ports,
    parse_ports_or_all,
)
from libs.capture.iptables import PROXY_UID


class CaptureFailed(RuntimeError):
    pass


def _flag(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """argparse reports ArgumentTypeError's message; a plain ValueError's would be lost."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc

    return convert


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services.agent.capture",
                                     description="Install Istio's iptables capture in this network namespace.")
    parser.add_argument("--proxy-uid", type=int, default=PROXY_UID, help="uid of Envoy and the agent (not captured)")
    parser.add_argument("--proxy-gid", type=int, default=PROXY_UID, help="gid of Envoy and the agent (not captured)")
    parser.add_argument("--outbound-port", type=int, default=15001, help="Envoy's outbound capture port")
    parser.add_argument("--inbound-port", type=int, default=15006, help="Envoy's inbound capture port")
    parser.add_argument("--include-inbound-ports", type=_flag(parse_ports_or_all), default="*",
                        help="inbound ports to capture: a list, * (default) or empty for none")
    parser.add_argument("--exclude-inbound-ports", type=_flag(parse_ports), default=(),
                        help="inbound ports never captured, beyond Envoy's and the agent's own")
    parser.add_argument("--include-outbound-ip-ranges", type=_flag(parse_ip_ranges_or_all), default="*",
                        help="IPv4 CIDR ranges whose outbound traffic is captured: a list, * (default) or empty")
    parser.add_argument("--exclude-outbound-ip-ranges", type=_flag(parse_ip_ranges), default=(),
                        help="IPv4 CIDR ranges whose outbound traffic bypasses the sidecar")
    parser.add_argument("--exclude-outbound-ports", type=_flag(parse_ports), default=(),
                        help="destination ports whose outbound traffic bypasses the sidecar")
    parser.add_argument("--iptables", default="iptables", help="the iptables command")
    parser.add_argument("--dry-run", action="store_true", help="print the rules instead of installing them")
    return parser


def settings_from(args: argparse.Namespace) -> CaptureSettings:
    return CaptureSettings(
        proxy_uid=args.proxy_uid, proxy_gid=args.proxy_gid, outbound_port=args.outbound_port,
        inbound_port=args.inbound_port, include_inbound_ports=args.include_inbound_ports,
        exclude_inbound_ports=args.exclude_inbound_ports, include_outbound_ip_ranges=args.include_outbound_ip_ranges,
        exclude_outbound_ip_ranges=args.exclude_outbound_ip_ranges, exclude_outbound_ports=args.exclude_outbound_ports,
    )


def _iptables(iptables: str, rule: list[str]) -> subprocess.CompletedProcess[str]:
    # `-w`: wait for the xtables lock instead of failing at once while another program
    # (dockerd, a neighbour's init container) holds it.
    try:
        return subprocess.run([iptables, "-w", *rule], capture_output=True, text=True, check=False)
    except OSError as exc:
        raise CaptureFailed(f"cannot run {iptables}: {exc.strerror}") from exc


def install(settings: CaptureSettings, iptables: str = "iptables") -> None:
    for rule in cleanup_rules():
        # Fails when there is nothing to undo, which is the usual case.
        _iptables(iptables, rule)
    for rule in capture_rules(settings):
        result = _iptables(iptables, rule)
        if result.returncode != 0:
            raise CaptureFailed(f"{iptables} {' '.join(rule)}: {(result.stderr or result.stdout).strip()}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    settings = settings_from(args)
    if args.dry_run:
        for rule in capture_rules(settings):
            print(" ".join([args.iptables, *rule]))
        return 0
    try:
        install(settings, args.iptables)
    except CaptureFailed as exc:
        print(f"capture: {exc}", file=sys.stderr)
        return 1
    print(f"capture: {len(capture_rules(settings))} iptables rules installed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
