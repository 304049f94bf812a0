"""Schemas of Mixer's policy kinds (config.istio.io/v1alpha2), as Istio 1.0 and 1.1 served them.

Field names and types follow istio/api's policy/v1beta1/cfg.proto (rule, handler, instance),
mixer/v1/config/client/{quota,service}.proto (QuotaSpec, QuotaSpecBinding), and istio/istio's
mixer/adapter/{denier,list,memquota,redisquota}/config/config.proto and
mixer/template/{checknothing,listentry,quota} for the params of the adapters and templates
Mizzen's policy service runs.

Istio 1.0 wrote one kind per adapter and template (`kind: denier`, `kind: quota`) whose spec is
the params; 1.1 added the generic `handler` and `instance`, whose `params` take the same
messages, chosen by `compiledAdapter` / `compiledTemplate` (`ADAPTER_PARAMS`, `TEMPLATE_PARAMS`).
The schema registry is global (AuthorizationPolicy already has a `Rule`), so message names
carry a `mixer.`, adapter or template prefix.
"""

from __future__ import annotations

from libs.config.schema._types import ANY, BOOL, DURATION, INT32, INT64, STRING, Enum, ListOf, MapOf, Message

STRINGS = ListOf(STRING)

# --- rule, handler, instance (policy/v1beta1/cfg.proto) ----------------------------------

HEADER_OPERATION = Message("mixer.Rule.HeaderOperationTemplate", {
    "name": STRING,
    "values": STRINGS,
    "operation": Enum("mixer.Rule.HeaderOperationTemplate.Operation", ("REPLACE", "REMOVE", "APPEND")),
})
ACTION = Message("mixer.Action", {"handler": STRING, "instances": STRINGS, "name": STRING})
RULE = Message("mixer.Rule", {
    "match": STRING,
    "actions": ListOf(ACTION),
    "requestHeaderOperations": ListOf(HEADER_OPERATION),
    "responseHeaderOperations": ListOf(HEADER_OPERATION),
    # $hide_from_docs in Istio: kept as written.
    "sampling": ANY,
})
# `params` depends on compiledAdapter / compiledTemplate: the validator walks it with the
# adapter's or template's schema below (see `libs.config.validation.mixer`).
HANDLER = Message("mixer.Handler", {
    # Ignored: a handler is named by metadata.name (the field predates Kubernetes resources).
    "name": STRING,
    "compiledAdapter": STRING,
    "adapter": STRING,
    "params": ANY,
    # For out-of-process adapters, which Mizzen does not run: kept as written.
    "connection": ANY,
})
INSTANCE = Message("mixer.Instance", {
    "name": STRING,
    "compiledTemplate": STRING,
    "template": STRING,
    "params": ANY,
    "attributeBindings": MapOf(STRING),
})

# --- adapter params ----------------------------------------------------------------------

DENIER = Message("denier.Params", {
    "status": Message("google.rpc.Status", {
        # google.rpc.Code, 0-16; the validator checks the range.
        "code": INT32,
        "message": STRING,
        # google.protobuf.Any in its JSON form ({"@type": ..., ...}).
        "details": ListOf(ANY),
    }),
    "validDuration": DURATION,
    "validUseCount": INT32,
})
LISTCHECKER = Message("listchecker.Params", {
    "providerUrl": STRING,
    "refreshInterval": DURATION,
    "ttl": DURATION,
    "cachingInterval": DURATION,
    "cachingUseCount": INT32,
    "overrides": STRINGS,
    "entryType": Enum("listchecker.Params.ListEntryType",
                      ("STRINGS", "CASE_INSENSITIVE_STRINGS", "IP_ADDRESSES", "REGEX")),
    "blacklist": BOOL,
})
_DIMENSIONS = MapOf(STRING)
MEMQUOTA = Message("memquota.Params", {
    "quotas": ListOf(Message("memquota.Params.Quota", {
        "name": STRING,
        "maxAmount": INT64,
        "validDuration": DURATION,
        "overrides": ListOf(Message("memquota.Params.Override", {
            "dimensions": _DIMENSIONS,
            "maxAmount": INT64,
            "validDuration": DURATION,
        })),
    })),
    "minDeduplicationDuration": DURATION,
})
REDISQUOTA = Message("redisquota.Params", {
    "quotas": ListOf(Message("redisquota.Params.Quota", {
        "name": STRING,
        "maxAmount": INT64,
        "validDuration": DURATION,
        "bucketDuration": DURATION,
        "rateLimitAlgorithm": Enum("redisquota.Params.QuotaAlgorithm", ("FIXED_WINDOW", "ROLLING_WINDOW")),
        # Redis overrides have no validDuration: the quota's window applies.
        "overrides": ListOf(Message("redisquota.Params.Override", {"dimensions": _DIMENSIONS, "maxAmount": INT64})),
    })),
    "redisServerUrl": STRING,
    "connectionPoolSize": INT64,
})

# --- template params (the templates' instance params) ------------------------------------

CHECKNOTHING = Message("checknothing.InstanceParam", {})
LISTENTRY = Message("listentry.InstanceParam", {"value": STRING})
QUOTA = Message("quota.InstanceParam", {"dimensions": MapOf(STRING)})

ADAPTER_PARAMS: dict[str, Message] = {
    "denier": DENIER,
    "listchecker": LISTCHECKER,
    "memquota": MEMQUOTA,
    "redisquota": REDISQUOTA,
}
TEMPLATE_PARAMS: dict[str, Message] = {
    "checknothing": CHECKNOTHING,
    "listentry": LISTENTRY,
    "quota": QUOTA,
}

# --- QuotaSpec, QuotaSpecBinding (mixer/v1/config/client) --------------------------------

STRING_MATCH = Message("QuotaSpec.StringMatch", {"exact": STRING, "prefix": STRING, "regex": STRING},
                       oneofs=(("exact", "prefix", "regex"),))
QUOTA_SPEC = Message("QuotaSpec", {
    "rules": ListOf(Message("QuotaSpec.QuotaRule", {
        "match": ListOf(Message("QuotaSpec.AttributeMatch", {"clause": MapOf(STRING_MATCH)})),
        "quotas": ListOf(Message("QuotaSpec.Quota", {"quota": STRING, "charge": INT64})),
    })),
})
ISTIO_SERVICE = Message("QuotaSpecBinding.IstioService", {
    "name": STRING,
    "namespace": STRING,
    "domain": STRING,
    "service": STRING,
    "labels": MapOf(STRING),
})
QUOTA_SPEC_BINDING = Message("QuotaSpecBinding", {
    "services": ListOf(ISTIO_SERVICE),
    "quotaSpecs": ListOf(Message("QuotaSpecBinding.QuotaSpecReference", {"name": STRING, "namespace": STRING})),
})
