"""NATS for Mizzen: one connection per process, and JetStream KV buckets.

Direct use of `nats` stays inside this package (ruff's banned-api enforces it).
"""

from libs.bus._buckets import (
    MESH_CONFIG,
    MESH_TRUST,
    MESH_TRUST_STATUS,
    MESH_WORKLOADS,
    TRUST_STATUS_TTL_S,
    ConfigKey,
    config_key,
    parse_config_key,
)
from libs.bus._connection import Bus, BusSettings
from libs.bus._errors import BusError, BusUnavailable, KeyNotFound
from libs.bus._kv import KvBucket, KvEntry, KvEvent, KvSynced
from libs.bus._mirror import DecodedKvMirror, KvMirror
from libs.bus._readiness import NATS_CONNECTED, track_connection

__all__ = [
    "MESH_CONFIG",
    "MESH_TRUST",
    "MESH_TRUST_STATUS",
    "MESH_WORKLOADS",
    "NATS_CONNECTED",
    "TRUST_STATUS_TTL_S",
    "Bus",
    "BusError",
    "BusSettings",
    "BusUnavailable",
    "ConfigKey",
    "DecodedKvMirror",
    "KeyNotFound",
    "KvBucket",
    "KvEntry",
    "KvEvent",
    "KvMirror",
    "KvSynced",
    "config_key",
    "parse_config_key",
    "track_connection",
]
