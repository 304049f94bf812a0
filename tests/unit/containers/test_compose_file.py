"""docker-compose.yml and its config folder agree with each other and with Mizzen: every
Bookinfo workload is a pod of four containers, each proxy has its identity volume, the
apps' service names resolve to the ServiceEntries' virtual IPs, and only istio-init and
the identities container run as root."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tools.containers.compose import COMPOSE_FILE, HostPorts
from tools.containers.identities import mesh_proxies
from tools.localmesh import bookinfo

CONFIG = COMPOSE_FILE.parent / "deploy" / "docker" / "compose" / "config"


def _services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return services


def test_every_bookinfo_workload_is_a_pod_of_four_containers() -> None:
    services = _services()
    for workload in bookinfo.workloads():
        pod, init, app, proxy = (services[f"{workload.name}{suffix}"] for suffix in ("-pod", "-init", "", "-proxy"))
        assert pod["hostname"] == workload.name
        for member in (init, app, proxy):
            assert member["network_mode"] == f"service:{workload.name}-pod"
        assert app["depends_on"][f"{workload.name}-init"] == {"condition": "service_completed_successfully"}
        assert proxy["depends_on"][f"{workload.name}-init"] == {"condition": "service_completed_successfully"}
        assert proxy["user"] == "1337:1337"
        command = proxy["command"]
        assert command[:1] == ["services.agent"]
        assert command[command.index("--pod-name") + 1] == workload.name
        assert command[command.index("--service-account") + 1] == workload.service_account
        labels = dict(item.split("=") for item in command[command.index("--labels") + 1].split(","))
        assert labels == workload.labels
        assert app["command"][0] == workload.service
        if workload.service == "reviews":
            assert app["command"][app["command"].index("--version") + 1] == workload.version


def test_each_proxy_mounts_only_its_own_identity_volume() -> None:
    services = _services()
    identities = services["identities"]["volumes"]
    for name, _, _ in mesh_proxies():
        proxy = services.get(f"{name}-proxy") or services[name]
        assert proxy["volumes"] == [f"id-{name}:/var/run/mizzen/identity:ro"]
        assert f"id-{name}:/var/run/mizzen/identities/{name}" in identities


def test_service_names_resolve_to_the_virtual_ips_the_service_entries_claim() -> None:
    services = _services()
    hosts = dict(entry.rsplit(":", 1) for entry in services["productpage-v1-pod"]["extra_hosts"])
    entries = {d["metadata"]["name"]: d["spec"] for d in
               yaml.safe_load_all((CONFIG / "bookinfo-platform.yaml").read_text()) if d}
    for service, vip in bookinfo.virtual_ips(0).items():
        assert hosts[service] == vip
        assert hosts[f"{service}.default.svc.cluster.local"] == vip
        assert entries[service]["addresses"] == [vip]


def test_only_istio_init_and_identities_run_as_root_and_with_capabilities() -> None:
    for name, service in _services().items():
        if name.endswith("-init"):
            assert service["user"] == "root"
            assert service["cap_drop"] == ["ALL"] and service["cap_add"] == ["NET_ADMIN", "NET_RAW"]
        elif name == "identities":
            assert service["user"] == "root"
            assert service["cap_drop"] == ["ALL"] and set(service["cap_add"]) == {"CHOWN", "DAC_OVERRIDE", "FOWNER"}
        else:
            assert service.get("user") in (None, "1337:1337"), name
            assert "cap_add" not in service, name


def test_published_ports_are_loopback_only_and_follow_the_host_port_variables() -> None:
    published = [port for service in _services().values() for port in service.get("ports", [])]
    assert all(port.startswith("127.0.0.1:") for port in published)
    variables = {port.split("${", 1)[1].split(":-")[0] for port in published}
    assert variables == set(HostPorts().env())


def test_galley_watches_the_config_folder_and_every_file_there_is_valid() -> None:
    from libs.config import parse_text

    galley = _services()["galley"]
    assert any(volume.startswith("${MIZZEN_CONFIG_DIR:-./deploy/docker/compose/config}:/etc/mizzen/config")
               for volume in galley["volumes"])
    for path in sorted(Path(CONFIG).glob("*.yaml")):
        parsed = parse_text(path.read_text(), str(path))
        assert parsed.ok and not parsed.unsupported, (path, parsed.errors())
