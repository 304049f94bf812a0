"""The pure parts of the container tooling: the Debian mirror apt uses, the wheel closure
checked against the image's marker environment, the readiness of the compose mesh as
pilot's /debug/syncz shows it, pilot-front's merge of replicas, identities' files, and
the image's entrypoint and readiness scripts."""

from __future__ import annotations

import http.server
import os
import stat
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.containers import base, compose, identities, pilot_front, wheels
from tools.containers.engine import ContainerError

DOCKER_DIR = Path(__file__).resolve().parents[3] / "deploy" / "docker"
BOOKWORM = {"python_full_version": "3.11.2", "python_version": "3.11", "sys_platform": "linux",
            "platform_machine": "x86_64", "platform_system": "Linux", "os_name": "posix",
            "implementation_name": "cpython", "implementation_version": "3.11.2",
            "platform_python_implementation": "CPython", "platform_release": "", "platform_version": ""}


# -- the Debian base ------------------------------------------------------------------


def test_the_mirror_comes_from_a_deb822_sources_file() -> None:
    text = """Types: deb
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main
"""
    assert base.mirror_in(text, deb822=True) == "http://mirror.example/debian"
    assert base.mirror_in(text.replace("Types: deb\nURIs: http://mirror", "Types: deb\nEnabled: no\nURIs: http://m"),
                          deb822=True) is None


def test_the_mirror_comes_from_a_one_line_sources_list() -> None:
    text = "# comment\ndeb-src http://src.example/debian bookworm main\n" \
           "deb [signed-by=/k.gpg] http://mirror.example/debian/ bookworm main\n"
    assert base.mirror_in(text, deb822=False) == "http://mirror.example/debian"
    assert base.mirror_in("deb http://x/debian trixie main\n", deb822=False) is None


def test_the_base_tag_changes_with_the_mirror_and_only_with_the_recipe() -> None:
    assert base.base_tag("http://a/debian") == base.base_tag("http://a/debian")
    assert base.base_tag("http://a/debian") != base.base_tag("http://b/debian")
    assert base.base_tag("http://a/debian").startswith("mizzen-base:bookworm-")


# -- wheels -------------------------------------------------------------------------


def _wheel(directory: Path, name: str, version: str, *requires: str) -> None:
    dist = f"{name.replace('-', '_')}-{version}"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires) + "\nA description.\nRequires-Dist: not-a-header\n"
    with zipfile.ZipFile(directory / f"{dist}-py3-none-any.whl", "w") as archive:
        archive.writestr(f"{dist}.dist-info/METADATA", metadata)


def test_the_closure_is_checked_with_the_image_pythons_markers(tmp_path: Path) -> None:
    _wheel(tmp_path, "mizzen", "0.1.0", "redis>=5", "pytest; extra == 'dev'")
    _wheel(tmp_path, "redis", "5.0.0", 'async-timeout>=4.0.3; python_full_version < "3.11.3"',
           "hiredis; extra == 'hiredis'")
    lacking = wheels.missing(tmp_path, "mizzen", BOOKWORM)
    assert [str(r) for r in lacking] == ['async-timeout>=4.0.3; python_full_version < "3.11.3"']
    assert wheels.missing(tmp_path, "mizzen", {**BOOKWORM, "python_full_version": "3.11.9"}) == []


def test_complete_fetches_until_nothing_is_missing(tmp_path: Path) -> None:
    _wheel(tmp_path, "mizzen", "0.1.0", "a")
    fetched: list[list[str]] = []

    def download(requirements: list[str]) -> None:
        fetched.append(list(requirements))
        if requirements == ["a"]:
            _wheel(tmp_path, "a", "1.0", "b[fast]>=2")
        else:
            _wheel(tmp_path, "b", "2.0")

    wheels.complete(tmp_path, "mizzen", BOOKWORM, download)  # type: ignore[arg-type]
    assert fetched == [["a"], ["b[fast]>=2"]]


def test_complete_gives_up_naming_what_never_came(tmp_path: Path) -> None:
    _wheel(tmp_path, "mizzen", "0.1.0", "nowhere")
    with pytest.raises(ContainerError, match="nowhere"):
        wheels.complete(tmp_path, "mizzen", BOOKWORM, lambda requirements: None)


# -- the compose mesh's readiness -----------------------------------------------------


def _row(name: str, version: str, awaiting: bool = False) -> dict[str, object]:
    return {"name": name, "version": version, "types": {"cds": {"awaiting_ack": awaiting}}}


def test_pending_proxies_names_each_one_and_why() -> None:
    syncz = {"version": "7.abc", "proxies": [_row("a.default", "7.abc"), _row("b.default", "6.abc"),
                                             _row("c.default", "7.abc", awaiting=True)]}
    assert compose.pending_proxies(syncz, ["a.default", "b.default", "c.default", "d.default"]) == [
        "b.default (at 6.abc, pilot at 7.abc)", "c.default (awaiting ACK)", "d.default (not connected)"]
    assert compose.pending_proxies(syncz, ["a.default"]) == []


def test_the_mesh_has_a_proxy_per_bookinfo_workload_and_gateway() -> None:
    assert compose.expected_proxies() == sorted([
        "details-v1.default", "productpage-v1.default", "ratings-v1.default", "reviews-v1.default",
        "reviews-v2.default", "reviews-v3.default", "istio-ingressgateway.istio-system",
        "istio-egressgateway.istio-system"])


def test_bookinfo_counts_as_served_only_with_details_and_reviews() -> None:
    page = '<h4>The Comedy of Errors</h4><dd id="reviews-version">v2</dd>'
    assert compose.bookinfo_served(200, page)
    assert not compose.bookinfo_served(503, page)
    assert not compose.bookinfo_served(200, "<h4>Error fetching product reviews</h4>")
    assert not compose.bookinfo_served(200, page + "Error fetching product details")


def test_host_ports_come_from_the_compose_files_variables() -> None:
    ports = compose.HostPorts.from_env({"MIZZEN_INGRESS_PORT": "18080"})
    assert ports.ingress == 18080 and ports.galley == 15019
    assert ports.env()["MIZZEN_INGRESS_PORT"] == "18080"
    with pytest.raises(ContainerError, match="MIZZEN_PILOT_PORT"):
        compose.HostPorts.from_env({"MIZZEN_PILOT_PORT": "x"})


def test_a_held_port_is_reported_by_its_variable() -> None:
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        ports = compose.HostPorts(ingress=port, galley=_free(), pilot=_free(), telemetry=_free(), zipkin=_free())
        assert ports.taken() == [f"MIZZEN_INGRESS_PORT={port}"]


def _free() -> int:
    from tests.harness.ports import free_port

    return free_port()


def test_a_context_records_galley_pilot_and_a_private_copy_of_the_token(tmp_path: Path) -> None:
    from tools.mizzenctl import contexts

    class Mesh:
        galley_url = "http://127.0.0.1:1"
        pilot_url = "http://127.0.0.1:2"

        def galley_token(self) -> str:
            return "secret-token"

    environ = {"MIZZEN_CONFIG_HOME": str(tmp_path)}
    token_file = compose.record_context(Mesh(), "compose", environ)  # type: ignore[arg-type]
    assert token_file.read_text() == "secret-token\n"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    current = contexts.current(environ)
    assert current is not None
    assert (current.name, current.galley, current.pilot, current.token_file) == (
        "compose", "http://127.0.0.1:1", "http://127.0.0.1:2", str(token_file))
    assert compose.forget_context("compose", environ)
    assert contexts.current(environ) is None and not token_file.exists()
    assert not compose.forget_context("compose", environ)


# -- pilot-front ------------------------------------------------------------------------


def test_pilot_front_joins_the_replicas_proxies() -> None:
    first = {"pilot": "a-1", "version": "3", "proxies": [{"name": "x"}]}
    second = {"pilot": "b-1", "version": "3", "proxies": [{"name": "y"}]}
    merged = pilot_front.merge_syncz([first, second])
    assert merged["version"] == "3" and [p["name"] for p in merged["proxies"]] == ["x", "y"]
    assert pilot_front.merge_syncz([[{"proxy": "x"}], [{"proxy": "y"}]]) == [{"proxy": "x"}, {"proxy": "y"}]


# -- identities -----------------------------------------------------------------------


def test_each_proxy_gets_a_token_and_the_root_and_galley_a_token_once(tmp_path: Path) -> None:
    from services.citadel.auth.key_store import FileTokenKeyStore

    state = tmp_path / "citadel"
    state.mkdir()
    FileTokenKeyStore(state).load_or_create()
    (state / identities.ROOT_CERT).write_text("-----BEGIN CERTIFICATE-----\n")
    identities.wait_for_citadel(state, timeout_s=1)
    volume = tmp_path / "productpage-v1"
    volume.mkdir()
    owner = (os.getuid(), os.getgid())
    identities.write_identity(volume, state, "default", "bookinfo-productpage", owner)
    assert (volume / "token").read_text().strip()
    assert stat.S_IMODE((volume / "token").stat().st_mode) == 0o600
    assert (volume / identities.ROOT_CERT).read_text() == "-----BEGIN CERTIFICATE-----\n"
    galley = tmp_path / "galley"
    assert identities.ensure_galley_token(galley, owner)
    token = (galley / "token").read_text()
    assert not identities.ensure_galley_token(galley, owner)
    assert (galley / "token").read_text() == token


def test_identities_says_which_volume_is_missing(tmp_path: Path) -> None:
    with pytest.raises(identities.InitFailed, match="no volume"):
        identities.write_identity(tmp_path / "absent", tmp_path, "default", "sa", (0, 0))
    with pytest.raises(identities.InitFailed, match=r"root-cert\.pem, token-key"):
        identities.wait_for_citadel(tmp_path, timeout_s=0)


# -- the image's scripts ----------------------------------------------------------------


def test_the_entrypoint_runs_a_module_with_pod_ip_filled_in(tmp_path: Path) -> None:
    fake = tmp_path / "python"
    fake.write_text('#!/bin/sh\nfor a do echo "[$a]"; done\n')
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "POD_IP": "10.1.2.3"}
    done = subprocess.run([str(DOCKER_DIR / "entrypoint.sh"), "services.agent", "--instance-ip", "$(POD_IP)",
                           "--x", "a$(POD_IP)b$(POD_IP)", "plain"], env=env, capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["[-m]", "[services.agent]", "[--instance-ip]", "[10.1.2.3]", "[--x]",
                                   "[a10.1.2.3b10.1.2.3]", "[plain]"]
    usage = subprocess.run([str(DOCKER_DIR / "entrypoint.sh")], env=env, capture_output=True, text=True, check=False)
    assert usage.returncode == 2 and "usage" in usage.stderr


@pytest.fixture
def http_server() -> Iterator[tuple[int, list[int]]]:
    statuses = [200]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"LIVE" if self.path == "/ready" else b"other"
            self.send_response(statuses[0])
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], statuses
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_the_readiness_script_wants_200_and_the_body_asked_for(http_server: tuple[int, list[int]]) -> None:
    port, statuses = http_server
    ready = str(DOCKER_DIR / "ready.sh")

    def check(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([ready, *args], capture_output=True, text=True, check=False, timeout=10)

    assert check(str(port), "/ready", "LIVE").returncode == 0
    assert check(f"127.0.0.1:{port}", "/readyz").returncode == 0
    missing = check(str(port), "/other", "LIVE")
    assert missing.returncode == 1 and "no LIVE" in missing.stderr
    statuses[0] = 503
    failing = check(str(port))
    assert failing.returncode == 1 and "503" in failing.stderr
