"""Traffic capture: the iptables rules Istio's init container installs, as data.

One function renders them, for the local mesh's `--capture iptables` and for the sidecar
injector's init container alike.
"""

from libs.capture.iptables import CaptureSettings, capture_rules

__all__ = ["CaptureSettings", "capture_rules"]
