"""Which settings give galley's webhook a certificate, and the errors naming those that cannot."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from libs.runtime import Readiness, SettingsError, Supervisor, load_settings
from services.galley import webhook_server
from services.galley.settings import GalleySettings
from services.galley.webhook_server import check


def settings(*args: str) -> GalleySettings:
    return load_settings(GalleySettings, list(args), {}, prog="galley")


CITADEL = ("--webhook-cert-source", "citadel", "--citadel-root-cert", "/var/run/secrets/istio/root-cert.pem",
           "--citadel-token-file", "/var/run/secrets/tokens/istio-token")


def test_files_without_files_leaves_the_webhook_off_and_citadel_with_its_paths_is_accepted() -> None:
    check(settings())
    check(settings("--webhook-cert-file", "/tls/cert.pem", "--webhook-key-file", "/tls/key.pem"))
    accepted = settings(*CITADEL)
    check(accepted)
    assert accepted.serving_dns_names == ("istio-galley.istio-system.svc",)
    assert (accepted.namespace, accepted.service_account) == ("istio-system", "istio-galley-service-account")


@pytest.mark.parametrize(("args", "setting", "reason"), [
    (("--webhook-cert-source", "vault"), "webhook_cert_source", "'vault' unknown; choose from files, citadel"),
    (("--webhook-key-file", "/tls/key.pem"), "webhook_key_file", "given without webhook_cert_file"),
    (("--webhook-cert-source", "citadel", "--citadel-token-file", "/t"), "citadel_root_cert",
     "needed with webhook_cert_source=citadel"),
    (("--webhook-cert-source", "citadel", "--citadel-root-cert", "/r"), "citadel_token_file",
     "needed with webhook_cert_source=citadel"),
    ((*CITADEL, "--webhook-cert-file", "/tls/cert.pem"), "webhook_cert_file", "the certificate comes from citadel"),
    ((*CITADEL, "--serving-dns-names", ""), "serving_dns_names", "the API server needs a DNS name"),
])
def test_settings_that_cannot_give_a_certificate_are_refused_by_name(args: tuple[str, ...], setting: str,
                                                                     reason: str) -> None:
    with pytest.raises(SettingsError) as refused:
        check(settings(*args))
    assert refused.value.setting == setting
    assert reason in refused.value.reason


def test_an_unreadable_root_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "root-cert.pem"
    broken = settings("--webhook-cert-source", "citadel", "--citadel-root-cert", str(missing),
                      "--citadel-token-file", str(tmp_path / "token"))
    with pytest.raises(SettingsError) as refused:
        webhook_server.start(Supervisor("galley", grace_s=1.0), broken, Readiness(), CollectorRegistry())
    assert (refused.value.setting, refused.value.source) == ("citadel_root_cert", str(missing))
    assert "No such file or directory" in refused.value.reason
