"""The `kubernetes` package is imported only when a client is built: the services that may
talk to an API server import `libs.kube`, and start without paying for the client."""

from __future__ import annotations

from tests.harness.imports import modules_loaded_by


def test_the_services_start_without_the_kubernetes_client() -> None:
    loaded = modules_loaded_by("import services.pilot.server, services.agent.server, services.galley.server, "
                               "services.citadel.server")
    assert "libs.kube" in loaded
    assert "kubernetes" not in loaded and "urllib3" not in loaded
