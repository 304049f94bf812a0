"""Istio's configuration analyzers (`istioctl analyze`), as a pure library.

Resources and the platform's services and workloads in, Istio's analysis messages out
(each with Istio's code, level and wording: `Error [IST0101] (VirtualService
default/reviews) Referenced host not found: "ratings2"`).  No I/O: `mizzenctl analyze`
gathers the inputs from files, galley and pilot; galley runs the same analyzers when
config is applied and returns what they find as warnings.

- `Inputs`: validated resources, the `Platform` (Kubernetes Services, workloads,
  namespaces, service accounts; None when unknown, which skips the analyzers that need
  it), where each resource was read from, and the resources that failed validation.
- `analyze(inputs)`: every analyzer of `ANALYZERS` over one shared `Catalog`.
- `about(messages, namespaces, refs, level)`: the messages a caller asked about.
"""

from libs.analysis._analyzer import Analyzer
from libs.analysis._catalog import Catalog, Inputs, ServiceView
from libs.analysis._messages import ALL as MESSAGE_TYPES
from libs.analysis._messages import Level, Message, MessageType, Ref
from libs.analysis._platform import Platform, Port, Service, Workload, from_kubernetes, from_pilot
from libs.analysis._run import ANALYZERS, VALIDATION_CODES, about, analyze, input_kinds

__all__ = [
    "ANALYZERS",
    "MESSAGE_TYPES",
    "VALIDATION_CODES",
    "Analyzer",
    "Catalog",
    "Inputs",
    "Level",
    "Message",
    "MessageType",
    "Platform",
    "Port",
    "Ref",
    "Service",
    "ServiceView",
    "Workload",
    "about",
    "analyze",
    "from_kubernetes",
    "from_pilot",
    "input_kinds",
]
