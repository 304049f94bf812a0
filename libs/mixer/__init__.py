"""Istio 1.0/1.1 Mixer's policy config (`config.istio.io`), resolved for the policy service
that runs it and for pilot, which asks which workloads need its filters."""

from libs.mixer._descriptors import (
    CHARGE_KEY,
    DESTINATION_KEY,
    DESTINATION_LABELS_KEY,
    HEADERS_KEY,
    QUOTA_DOMAIN,
    QUOTA_KEY,
    SOURCE_ADDRESS_KEY,
    header_key,
)
from libs.mixer._model import (
    CHECK_ADAPTERS,
    QUOTA_ADAPTERS,
    Action,
    Handler,
    Instance,
    MixerConfig,
    QuotaCharge,
    Rule,
    build,
)

__all__ = [
    "CHARGE_KEY",
    "CHECK_ADAPTERS",
    "DESTINATION_KEY",
    "DESTINATION_LABELS_KEY",
    "HEADERS_KEY",
    "QUOTA_ADAPTERS",
    "QUOTA_DOMAIN",
    "QUOTA_KEY",
    "SOURCE_ADDRESS_KEY",
    "Action",
    "Handler",
    "Instance",
    "MixerConfig",
    "QuotaCharge",
    "Rule",
    "build",
    "header_key",
]
