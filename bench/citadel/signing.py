"""CSR signings per second: raw `cryptography`, the in-process CA, and the gRPC API.

Raw is `CertificateBuilder.sign()` of the same workload profile from an already-parsed
key: the floor the CA cannot beat.  In-process adds what citadel must do per request
(parse and verify the CSR, check the identity, render PEM).  gRPC is citadel as a real
process behind TLS with token authentication, driven by concurrent clients.  The client
shares the machine, so citadel's own CPU time per CSR is recorded too: its inverse is
what one core running citadel can sign, whatever the client costs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509

from libs.pki import SpiffeId, parse_key_type
from libs.proto_gen.istio.v1.auth import ca_pb2, ca_pb2_grpc
from services.agent.identity import new_key_and_csr
from services.citadel.ca import CertificateAuthority, IssuancePolicy, check_csr, self_signed_root
from services.citadel.ca.profiles import signature_hash, workload_extensions
from tests.harness.citadel import Citadel, start_citadel
from tests.harness.processes import ProcessGroup

IDENTITY = SpiffeId("cluster.local", "bench", "signer")
# Distinct CSRs to cycle through (RSA key generation is slow; citadel checks each CSR anyway).
CSRS = 32


def _rate(work: Callable[[], Any], seconds: float) -> float:
    count, started = 0, time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        work()
        count += 1
    return count / (time.perf_counter() - started)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def in_process_rates(key_type: str, seconds: float) -> dict[str, float]:
    now = dt.datetime.now(dt.UTC)
    ca = CertificateAuthority(self_signed_root(parse_key_type(key_type), "cluster.local", now=now), IssuancePolicy())
    key, csr = new_key_and_csr(key_type, IDENTITY)
    public_key = key.public_key()
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.bundle.signing_cert.public_key())  # type: ignore[arg-type]
    algorithm = signature_hash(ca.bundle.signing_key)

    def raw() -> None:
        builder = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(ca.bundle.root.subject)
                   .public_key(public_key).serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(now + dt.timedelta(hours=24)))
        workload_extensions(builder, public_key, IDENTITY.uri, aki).sign(ca.bundle.signing_key, algorithm)

    def full() -> None:
        ca.sign_workload(check_csr(csr), IDENTITY, 86400)

    return {"raw_cryptography_per_s": _rate(raw, seconds), "in_process_ca_per_s": _rate(full, seconds)}


async def _grpc_rate(citadel: Citadel, csrs: list[str], token: str, seconds: float, concurrency: int) -> float:
    async with grpc.aio.secure_channel(citadel.address, grpc.ssl_channel_credentials(citadel.root_pem)) as channel:
        stub = ca_pb2_grpc.IstioCertificateServiceStub(channel)
        metadata = (("authorization", f"Bearer {token}"),)
        requests = [ca_pb2.IstioCertificateRequest(csr=c, validity_duration=86400) for c in csrs]
        for request in requests[:4]:  # warm up: TLS handshake, HTTP/2 connection
            await stub.CreateCertificate(request, metadata=metadata, timeout=10)
        done = 0
        deadline = time.perf_counter() + seconds

        async def worker(offset: int) -> None:
            nonlocal done
            index = offset
            while time.perf_counter() < deadline:
                response = await stub.CreateCertificate(requests[index % len(requests)], metadata=metadata, timeout=10)
                assert len(response.cert_chain) == 2
                done += 1
                index += concurrency

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        return done / (time.perf_counter() - started)


def measure(group: ProcessGroup, nats_url: str, work: Path, key_type: str, *, seconds: float,
            concurrency: int) -> dict[str, Any]:
    citadel = start_citadel(group, nats_url, work / f"citadel-{key_type}", "--ca-key-type", key_type,
                            "--log-level", "info", name=f"citadel-{key_type}")
    csrs = [new_key_and_csr(key_type, IDENTITY)[1] for _ in range(CSRS)]
    token = citadel.token(IDENTITY.namespace, IDENTITY.service_account)
    issued_before = citadel.metric("citadel_server_success_cert_issuance_count_total")
    cpu_before = _cpu_seconds(citadel.process.pid)
    grpc_per_s = asyncio.run(_grpc_rate(citadel, csrs, token, seconds, concurrency))
    cpu = _cpu_seconds(citadel.process.pid) - cpu_before
    issued = citadel.metric("citadel_server_success_cert_issuance_count_total") - issued_before
    citadel.process.stop()
    cpu_us_per_csr = cpu / issued * 1e6
    # In the same run, after citadel stopped, so the two do not share the CPU.
    rates = in_process_rates(key_type, seconds)
    return {
        "key_type": key_type,
        **{k: round(v, 1) for k, v in rates.items()},
        "grpc_per_s": round(grpc_per_s, 1),
        "grpc_vs_raw": round(grpc_per_s / rates["raw_cryptography_per_s"], 3),
        "citadel_cpu_us_per_csr": round(cpu_us_per_csr, 1),
        "citadel_per_core_per_s": round(1e6 / cpu_us_per_csr, 1),
        "citadel_per_core_vs_raw": round(1e6 / cpu_us_per_csr / rates["raw_cryptography_per_s"], 3),
        "grpc_issued_by_citadel": int(issued),
        "client_concurrency": concurrency,
    }
