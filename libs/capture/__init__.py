"""Traffic capture: the iptables rules Istio's init container installs, as data.

One function renders them, for the local mesh's `--capture iptables` and for the sidecar
injector's `istio-init` container alike (which runs `python -m services.agent.capture`).
"""

from libs.capture.iptables import ALL, CaptureSettings, capture_rules, cleanup_rules
from libs.capture.lists import (
    format_list,
    parse_ip_ranges,
    parse_ip_ranges_or_all,
    parse_port,
    parse_ports,
    parse_ports_or_all,
)

__all__ = [
    "ALL",
    "CaptureSettings",
    "capture_rules",
    "cleanup_rules",
    "format_list",
    "parse_ip_ranges",
    "parse_ip_ranges_or_all",
    "parse_port",
    "parse_ports",
    "parse_ports_or_all",
]
