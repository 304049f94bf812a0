"""A root rotation's state in citadel's stores: every phase written and read back, a crash
between two writes read as the old or the new phase, and a step over a changed store refused."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import stat
from pathlib import Path

import pytest

from libs.pki import fingerprint, load_certs, parse_key_type
from services.citadel.ca import FileCaStore
from services.citadel.ca.root import self_signed_root
from services.citadel.ca.roots import (
    NEXT_ROOT_CERT,
    NEXT_ROOT_KEY,
    ROOT_CERT,
    ROOT_KEY,
    ROTATION,
    Phase,
    RootSet,
    roots_from_files,
    roots_from_secret_data,
    roots_to_files,
    roots_to_secret_data,
)
from services.citadel.ca.store_kube import roots_from_secret
from services.citadel.errors import CaLoadError, RotationError

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
KEY = parse_key_type("ec-p256")
TD = "cluster.local"


def _phases(first: RootSet) -> list[RootSet]:
    published = first.begin(self_signed_root(KEY, TD, now=NOW, successor=True), NOW + dt.timedelta(seconds=1))
    switched = published.switch(NOW + dt.timedelta(seconds=2))
    return [first, published, switched, switched.drop(NOW + dt.timedelta(seconds=3))]


def _same(a: RootSet, b: RootSet) -> None:
    assert a.phase is b.phase
    assert a.fingerprints() == b.fingerprints()
    assert a.signing.signing_key.public_key() == b.signing.signing_key.public_key()
    assert (a.next is None) == (b.next is None)
    if a.next is not None and b.next is not None:
        assert a.next.signing_key.public_key() == b.next.signing_key.public_key()
    if a.phase is not Phase.STABLE:
        assert a.since == b.since


async def test_every_phase_is_written_and_read_back(tmp_path: Path) -> None:
    store = FileCaStore(tmp_path / "state")
    first = await store.create_roots(KEY, TD, NOW)
    previous = first
    for roots in _phases(first)[1:]:
        await store.save_roots(roots, previous, NOW)
        again = await FileCaStore(tmp_path / "state").create_roots(KEY, TD, NOW)
        _same(again, roots)
        # root-cert.pem is the trust bundle, signing root first: what agents and pilot read.
        bundle = load_certs((tmp_path / "state" / ROOT_CERT).read_bytes())
        assert tuple(fingerprint(c) for c in bundle) == roots.fingerprints()
        previous = roots
    assert not (tmp_path / "state" / NEXT_ROOT_KEY).exists()
    assert not (tmp_path / "state" / ROTATION).exists(), "a stable root keeps the two files it always had"
    assert stat.S_IMODE((tmp_path / "state" / ROOT_KEY).stat().st_mode) == 0o600


async def test_the_next_key_is_private(tmp_path: Path) -> None:
    store = FileCaStore(tmp_path)
    first = await store.create_roots(KEY, TD, NOW)
    await store.save_roots(_phases(first)[1], first, NOW)
    assert stat.S_IMODE((tmp_path / NEXT_ROOT_KEY).stat().st_mode) == 0o600


def test_a_crash_between_two_writes_reads_as_the_old_or_the_new_phase() -> None:
    first = RootSet(self_signed_root(KEY, TD, now=NOW), NOW)
    phases = _phases(first)
    for before, after in itertools.pairwise(phases):
        old_files, new_files = roots_to_files(before), roots_to_files(after)
        on_disk = dict(old_files)
        for name, data in new_files.items():  # the write order: each prefix is a possible crash
            on_disk[name] = data
            if on_disk[ROOT_CERT] is None or on_disk[ROOT_KEY] is None:
                continue
            read = roots_from_files(on_disk, source="state", now=NOW)
            matches = [r for r in (before, after) if (r.phase, fingerprint(r.root), set(r.fingerprints())) == (
                read.phase, fingerprint(read.root), set(read.fingerprints()))]
            assert matches, f"after writing {name}: {read.phase} {read.fingerprints()}"
            if read.next is not None:
                assert any(r.next is not None and fingerprint(r.next.root) == fingerprint(read.next.root)
                           for r in matches)


async def test_files_left_by_a_crash_are_laid_out_again(tmp_path: Path) -> None:
    store = FileCaStore(tmp_path)
    first = await store.create_roots(KEY, TD, NOW)
    published = _phases(first)[1]
    await store.save_roots(published, first, NOW)
    switched = published.switch(NOW)
    # Crashed right after the signing key was written (bundle still [A, B], next files left).
    (tmp_path / ROOT_KEY).write_bytes(roots_to_files(switched)[ROOT_KEY] or b"")
    again = await FileCaStore(tmp_path).create_roots(KEY, TD, NOW)
    assert again.phase is Phase.SWITCHED and fingerprint(again.root) == fingerprint(switched.root)
    assert tuple(fingerprint(c) for c in load_certs((tmp_path / ROOT_CERT).read_bytes())) == again.fingerprints()
    assert not (tmp_path / NEXT_ROOT_CERT).exists()


async def test_a_step_over_a_changed_store_is_refused(tmp_path: Path) -> None:
    store = FileCaStore(tmp_path)
    first = await store.create_roots(KEY, TD, NOW)
    published = _phases(first)[1]
    await store.save_roots(published, first, NOW)
    with pytest.raises(RotationError, match="changed under this citadel"):
        await store.save_roots(first.begin(self_signed_root(KEY, TD, now=NOW), NOW), first, NOW)
    _same(await store.create_roots(KEY, TD, NOW), published)


def test_every_phase_survives_the_secret() -> None:
    first = RootSet(self_signed_root(KEY, TD, now=NOW), NOW)
    for roots in _phases(first):
        data = roots_to_secret_data(roots)
        if roots.phase is Phase.STABLE:
            assert set(data) == {"ca-cert.pem", "ca-key.pem"}, "Istio's two keys while no rotation runs"
        _same(roots_from_secret_data(data, source="secret", now=NOW), roots)
        secret = {"metadata": {"name": "istio-ca-secret", "namespace": "istio-system"},
                  "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}
        _same(roots_from_secret(secret, NOW), roots)


def test_a_bundle_without_the_keys_root_is_refused() -> None:
    a, b = self_signed_root(KEY, TD, now=NOW), self_signed_root(KEY, TD, now=NOW)
    files = roots_to_files(RootSet(a, NOW))
    files[ROOT_CERT] = roots_to_files(RootSet(b, NOW))[ROOT_CERT]
    with pytest.raises(CaLoadError, match="no certificate in the root bundle belongs to the root key"):
        roots_from_files(files, source="state", now=NOW)
