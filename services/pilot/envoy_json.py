"""Pilot's encoded resources as Envoy's admin interface prints them.

What `/debug/config_dump` shows of what pilot sent, and what `/debug/dryrun` compares, is
one rendering: the resource's `Any` (as it travels, with its `@type`) in protobuf's JSON
mapping with proto field names, as Envoy's `/config_dump` keeps them, so pilot's view and
Envoy's compare as JSON.
"""

from __future__ import annotations

import json
from typing import Any

from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import any_pb2, json_format

from services.pilot.xds.snapshot import EncodedResource

__all__ = ["canonical", "packed", "resource_dict"]


def packed(resource: EncodedResource) -> any_pb2.Any:
    """The resource as it travels: its `DiscoveryResponse.resources` entry, decoded."""
    return discovery_pb2.DiscoveryResponse.FromString(resource.field_bytes).resources[0]


def as_dict(message: any_pb2.Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def resource_dict(resource: EncodedResource) -> dict[str, Any]:
    return as_dict(packed(resource))


def canonical(resource: EncodedResource) -> str:
    """Canonical JSON (sorted keys, indent 2): equal text means equal config, and a line
    diff of two of them reads as a change to fields."""
    return json.dumps(resource_dict(resource), sort_keys=True, indent=2)
