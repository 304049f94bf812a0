"""CEXL, the config expression language of Istio 1.0/1.1's Mixer, in pure Python.

Rules match on expressions such as
`destination.labels["app"] == "ratings" && source.labels["version"] == "v3"`, and instances
map attributes with ones such as `request.headers["x-forwarded-for"] | "unknown"`.

    expression = parse(text)                # CexlError on a syntax error; cached by text
    check(expression)                       # its ValueType under VOCABULARY; CexlError if ill-typed
    evaluate(expression, attributes)        # per request; EvaluationError when it fails
    partial(expression, known)              # True / False / None from some attributes only
    expression.referenced()                 # what an evaluation may read, for cache keys

Attribute values are Python values: STRING, DNS_NAME, EMAIL_ADDRESS and URI are str, INT64
int, DOUBLE float, BOOL bool, TIMESTAMP an aware datetime, DURATION a timedelta, IP_ADDRESS
an ipaddress.IPv4Address or IPv6Address, STRING_MAP a Mapping[str, str].

The semantics are Mixer's (istio/istio 1.1, mixer/pkg/lang and mixer/pkg/il): Go's
operator precedence (`|` and `+` bind tighter than `==`); an absent attribute fails the
evaluation unless a `|` alternative follows it; a key missing from a present map reads as
""; a string literal that reads as a Go duration ("10ms") is a DURATION.  Beyond Mixer,
`!` negates a BOOL and DURATIONs compare with == < <= > >=.
"""

from libs.cexl._api import Expression, check, evaluate, parse, partial
from libs.cexl._errors import CexlError, EvaluationError
from libs.cexl._types import ValueType
from libs.cexl._vocabulary import VOCABULARY

__all__ = [
    "VOCABULARY",
    "CexlError",
    "EvaluationError",
    "Expression",
    "ValueType",
    "check",
    "evaluate",
    "parse",
    "partial",
]
