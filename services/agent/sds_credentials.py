"""The secrets Envoy asks for beyond the workload's own: gateway credentials
(`kubernetes://<name>`, `…-cacert`) and certificate files (`file-cert:`, `file-root:`),
resolved when a stream first asks for them and again whenever their source changes.

Who may have what (Istio's rules):
- `kubernetes://` goes to router proxies (gateways) only, and only from the proxy's own
  namespace; a sidecar, or another namespace's secret, is refused.
- `file-cert:` / `file-root:` go to any proxy: Pilot names files on the proxy's host
  (gateway certificates, DestinationRule client certificates and CAs).

A secret that cannot be served (missing, unreadable, invalid, refused) is not an error to
Envoy: it is left out of the answers, so Envoy keeps waiting for it (its listener or cluster
warms, and once `initial_fetch_timeout` passes it refuses TLS on that chain only), while the
agent logs once which secret and why.  The moment it can be served it is pushed.  A secret
that stops being servable after it was served (deleted, half rewritten, bad PEM) keeps its
last good version: Envoy is never pushed what it would NACK.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from services.agent.credentials import (
    Credential,
    CredentialStore,
    check_ca,
    check_credential,
    validity_problem,
)
from services.agent.credentials_files import Signature, file_signature
from services.agent.errors import CredentialError, CredentialNotFound, CredentialRefused, InvalidCredential
from services.agent.sds_names import (
    FileCert,
    FileRoot,
    KubernetesSecret,
    SecretName,
    WorkloadSecret,
    parse_secret_name,
)
from services.agent.sds_secrets import SecretResource, SecretStore, certificate_secret, validation_context

log = structlog.get_logger(__name__)

# Certificates, keys and CA bundles are small; the largest common one, a system CA bundle, is
# about 200 KiB.  Anything bigger is not a PEM file someone meant.
MAX_FILE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ServePolicy:
    namespace: str  # the proxy's: the only one whose credentials it gets
    router: bool  # gateways get `kubernetes://` credentials, sidecars do not
    identity: bool  # `default` and `ROOTCA` exist only with the workload identity on


class CredentialMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.unavailable = Gauge("agent_sds_secrets_unavailable",
                                 "secrets Envoy asks for that cannot be served (missing, invalid or refused)",
                                 registry=registry)
        self.problems = Counter("agent_sds_secret_problems",
                                "secrets found missing, invalid or refused, by kind", ["kind"], registry=registry)


def read_pem_file(path: Path, what: str) -> bytes:
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidCredential(what, f"{path} is not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise InvalidCredential(what, f"{path} is larger than {MAX_FILE_BYTES} bytes")
        return path.read_bytes()
    except FileNotFoundError:
        raise CredentialNotFound(what, f"{path} does not exist") from None
    except OSError as exc:
        raise CredentialNotFound(what, f"cannot read {path}: {exc.strerror or exc}") from None


def _paths(name: SecretName | None) -> tuple[Path, ...]:
    if isinstance(name, FileCert):
        return (name.cert_path, name.key_path)
    if isinstance(name, FileRoot):
        return (name.ca_path,)
    return ()


class CredentialSecrets:
    """Keeps `secrets` holding every wanted credential or file secret that can be served."""

    def __init__(self, secrets: SecretStore, policy: ServePolicy, store: CredentialStore | None, *,
                 poll_interval_s: float = 0.5, metrics: CredentialMetrics | None = None,
                 now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.secrets = secrets
        self.policy = policy
        self.store = store
        self.poll_interval_s = poll_interval_s
        self.metrics = metrics
        self._now = now
        # Wanted names this object resolves (None: a name that did not parse).
        self._wanted: dict[str, SecretName | None] = {}
        self._problems: dict[str, str] = {}  # name -> the problem last logged for it
        self._signatures: dict[Path, Signature] = {}
        secrets.on_wanted(self.want)
        if store is not None:
            store.subscribe(self._store_changed)

    # -- what streams ask for --------------------------------------------------------------

    def want(self, names: frozenset[str]) -> None:
        for name in sorted(self._wanted.keys() - names):
            del self._wanted[name]
            self._problems.pop(name, None)
            self.secrets.drop(name)
        for name in sorted(names - self._wanted.keys()):
            parsed: SecretName | None
            try:
                parsed = parse_secret_name(name)
            except CredentialError as exc:
                self._wanted[name] = None
                self._problem(name, exc)
                continue
            if isinstance(parsed, WorkloadSecret) and self.policy.identity:
                continue  # the identity keeps default and ROOTCA in the store
            self._wanted[name] = parsed
            for path in _paths(parsed):
                # Before reading: a change after this is seen by the next poll.
                self._signatures[path] = file_signature(path)
            self._resolve(name, parsed)
        self._signatures = {p: s for p, s in self._signatures.items()
                            if any(p in _paths(n) for n in self._wanted.values())}
        self._update_gauge()

    @property
    def wanted(self) -> frozenset[str]:
        return frozenset(self._wanted)

    @property
    def problems(self) -> dict[str, str]:
        """Wanted names whose source is missing or bad now, and why (some may still be served
        their last good version)."""
        return dict(self._problems)

    @property
    def unavailable(self) -> dict[str, str]:
        """Wanted names not served, and why."""
        return {n: self._problems.get(n, "not resolved yet") for n in self._wanted if n not in self.secrets.resources}

    # -- changes -------------------------------------------------------------------------

    def _store_changed(self, namespace: str, name: str) -> None:
        for wanted, parsed in list(self._wanted.items()):
            if isinstance(parsed, KubernetesSecret) and (parsed.namespace or self.policy.namespace) == namespace:
                self._resolve(wanted, parsed)
        self._update_gauge()

    def poll_files(self) -> list[str]:
        """Re-resolve the file secrets whose files changed since the last look; their names."""
        current = {path: file_signature(path) for path in self._signatures}
        changed = {path for path, signature in current.items() if signature != self._signatures[path]}
        self._signatures = current
        names = [n for n, parsed in self._wanted.items() if changed & set(_paths(parsed))]
        for name in names:
            parsed = self._wanted[name]
            assert parsed is not None
            self._resolve(name, parsed)
        if names:
            self._update_gauge()
        return names

    async def watch_files(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval_s)
            self.poll_files()

    # -- resolving -----------------------------------------------------------------------

    def _resolve(self, name: str, parsed: SecretName) -> None:
        try:
            resource = self._build(name, parsed)
        except CredentialError as exc:
            self._problem(name, exc)
            return
        except Exception as exc:
            # A parser's surprise (an algorithm `cryptography` does not know...) must neither
            # take the SDS stream down nor reach Envoy.
            self._problem(name, InvalidCredential(name, f"cannot be read: {type(exc).__name__}: {exc}"))
            return
        first = name not in self.secrets.resources
        recovered = self._problems.pop(name, None) is not None
        changed = self.secrets.put(resource)
        if first or recovered:
            log.info("SDS secret served", secret=name, version=resource.version)
        elif changed:
            log.info("SDS secret updated", secret=name, version=resource.version)

    def _build(self, name: str, parsed: SecretName) -> SecretResource:
        if isinstance(parsed, FileCert):
            credential = Credential(read_pem_file(parsed.cert_path, name), read_pem_file(parsed.key_path, name), None)
            return self._certificate(name, credential)
        if isinstance(parsed, FileRoot):
            pem = read_pem_file(parsed.ca_path, name)
            check_ca(pem, name)
            return validation_context(pem, name)
        if isinstance(parsed, WorkloadSecret):
            raise CredentialNotFound(name, "the workload identity is off on this agent (identity_enabled), so there "
                                           "is no workload certificate or mesh root to serve")
        namespace = self._authorize(parsed)
        if self.store is None:
            raise CredentialNotFound(name, "no credential source is configured (set credentials_dir or "
                                           "credentials_from_kubernetes)")
        if parsed.ca_only:
            pem = self.store.get_ca(namespace, parsed.name)
            check_ca(pem, name)
            return validation_context(pem, name)
        return self._certificate(name, self.store.get(namespace, parsed.name))

    def _authorize(self, parsed: KubernetesSecret) -> str:
        if not self.policy.router:
            raise CredentialRefused(parsed.resource, "credentials are served to gateways (router proxies) only, as "
                                                     "in Istio; this proxy is a sidecar")
        namespace = parsed.namespace or self.policy.namespace
        if namespace != self.policy.namespace:
            raise CredentialRefused(parsed.resource, f"the secret is in namespace {namespace}; a gateway gets the "
                                                     f"credentials of its own namespace ({self.policy.namespace}) only")
        return namespace

    def _certificate(self, name: str, credential: Credential) -> SecretResource:
        leaf = check_credential(credential, name)
        problem = validity_problem(leaf, self._now())
        if problem:
            log.warning("serving a certificate that is not valid now", secret=name, problem=problem)
        return certificate_secret(name, credential.cert_chain_pem, credential.private_key_pem)

    def _problem(self, name: str, exc: CredentialError) -> None:
        reason = str(exc)
        if self._problems.get(name) == reason:
            return
        self._problems[name] = reason
        if self.metrics is not None:
            self.metrics.problems.labels(type(exc).__name__).inc()
        if name in self.secrets.resources:
            log.error("SDS secret can no longer be read; Envoy keeps its last good version", secret=name,
                      problem=type(exc).__name__, reason=reason)
        else:
            log.warning("SDS secret not available; Envoy waits for it (the listener or cluster using it does not "
                        "serve TLS until it appears)", secret=name, problem=type(exc).__name__, reason=reason)

    def _update_gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.unavailable.set(sum(1 for n in self._wanted if n not in self.secrets.resources))
