"""Messages of istio.type.v1beta1, shared by DestinationRule and the security kinds."""

from __future__ import annotations

from libs.config.schema._types import STRING, MapOf, Message

# istio.type.v1beta1.WorkloadSelector.  Not to be confused with networking's
# WorkloadSelector (Sidecar, ServiceEntry), whose field is `labels`.
MATCH_LABELS_SELECTOR = Message("WorkloadSelector(matchLabels)", {"matchLabels": MapOf(STRING)})

# istio.type.v1beta1.PolicyTargetReference: a Gateway API style reference.
POLICY_TARGET_REFERENCE = Message("PolicyTargetReference", {
    "group": STRING,
    "kind": STRING,
    "name": STRING,
    "namespace": STRING,
})
