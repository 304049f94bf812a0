"""Running the analyzers: every one over one shared catalog, messages deduplicated and in
a stable order, then narrowed to what the caller asked about."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from libs.analysis import authorization, destination_rules, gateways, mtls, schema, service_ports
from libs.analysis import virtual_service_refs as vs_refs
from libs.analysis import virtual_service_rules as vs_rules
from libs.analysis._analyzer import Analyzer
from libs.analysis._catalog import Catalog, Inputs
from libs.analysis._messages import Level, Message

ANALYZERS: tuple[Analyzer, ...] = (
    schema.SCHEMA,
    vs_refs.DESTINATION_HOSTS,
    vs_refs.DESTINATION_RULES,
    vs_refs.GATEWAYS,
    vs_rules.CONFLICTING_MESH_GATEWAY_HOSTS,
    vs_rules.MATCHES,
    gateways.INGRESS_GATEWAY_PORTS,
    gateways.CONFLICTING_GATEWAYS,
    destination_rules.CA_CERTIFICATES,
    destination_rules.SUBSET_SELECTS_PODS,
    mtls.MTLS,
    service_ports.PORT_NAMES,
    authorization.AUTHORIZATION_POLICIES,
)

# Codes whose findings validation reports too (as errors or warnings of its own): galley,
# which returns validation's findings already, leaves these out of apply's warnings.
VALIDATION_CODES = frozenset({"IST0106", "IST0133", "IST0130", "IST0131"})


def input_kinds(analyzers: Sequence[Analyzer] = ANALYZERS) -> list[str]:
    """The config kinds the analyzers read: what a live analysis needs to fetch."""
    return sorted({kind for analyzer in analyzers for kind in analyzer.kinds})


def analyze(inputs: Inputs, analyzers: Sequence[Analyzer] = ANALYZERS) -> list[Message]:
    """Every analyzer's messages, deduplicated and sorted.  Analyzers that need the
    platform are skipped when `inputs.platform` is None (not known)."""
    catalog = Catalog(inputs)
    found: dict[str, Message] = {}
    for analyzer in analyzers:
        if analyzer.needs_platform and not catalog.platform_known:
            continue
        for message in analyzer.run(catalog):
            found.setdefault(str(message), message)
    return sorted(found.values(), key=Message.sort_key)


def about(messages: Iterable[Message], namespaces: Iterable[str] | None = None,
          refs: Iterable[str] | None = None, level: Level = Level.INFO) -> list[Message]:
    """The messages about resources in `namespaces` (None: any) or named by `refs`
    (`Kind ns/name`; None: any), at `level` or above."""
    wanted_namespaces = None if namespaces is None else set(namespaces)
    wanted_refs = None if refs is None else set(refs)
    return [m for m in messages if m.level >= level
            and (wanted_namespaces is None or (m.resource is not None and m.resource.namespace in wanted_namespaces))
            and (wanted_refs is None or (m.resource is not None and str(m.resource) in wanted_refs))]
