"""What `bug-report` and `proxy-config -o json` take out: private keys (PEM, escaped in
JSON strings, base64 in an SDS secret), tokens, secret fields, the mesh's own credentials;
and what they keep (certificates, ordinary text).  Also the archive itself."""

from __future__ import annotations

import base64
import json
import tarfile
from pathlib import Path

from tools.mizzenctl import bug_report
from tools.mizzenctl.redact import REDACTED, redact_json, redact_text

KEY = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBx0cmVkYWN0ZWQ=\n-----END EC PRIVATE KEY-----\n"
CERT = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJl"


def test_text_loses_keys_tokens_and_bearer_credentials_but_keeps_certificates() -> None:
    text = f"loaded\n{KEY}{CERT}token {JWT} sent\nAuthorization: Bearer s3cr3t-t0ken-value\n"
    assert redact_text(text) == (f"loaded\n{REDACTED} private key\n{CERT}token {REDACTED} token sent\n"
                                 f"Authorization: Bearer {REDACTED}\n")


def test_text_loses_a_key_escaped_inside_a_json_log_line() -> None:
    line = json.dumps({"event": "wrote key", "pem": KEY})
    assert "MHcCAQ" not in redact_text(line)


def test_text_loses_the_secrets_the_caller_names() -> None:
    assert redact_text("GET /apis/v1/resources token=Zm9vYmFyYmF6cXV4", ["Zm9vYmFyYmF6cXV4"]) == \
        f"GET /apis/v1/resources token={REDACTED}"


def test_an_sds_secret_keeps_its_certificate_and_loses_its_key() -> None:
    secret = {"name": "default", "tls_certificate": {
        "certificate_chain": {"inline_bytes": base64.b64encode(CERT.encode()).decode()},
        "private_key": {"inline_bytes": base64.b64encode(KEY.encode()).decode()}}}
    redacted = redact_json(secret)
    assert redacted["tls_certificate"]["private_key"] == REDACTED
    assert redacted["tls_certificate"]["certificate_chain"] == secret["tls_certificate"]["certificate_chain"]
    assert secret["tls_certificate"]["private_key"] != REDACTED  # the input is left alone


def test_a_base64_key_under_any_name_is_found() -> None:
    hidden = {"generic": {"inline_bytes": base64.b64encode(KEY.encode()).decode()}, "list": [KEY, "plain"]}
    assert redact_json(hidden) == {"generic": {"inline_bytes": REDACTED}, "list": [REDACTED, "plain"]}


def test_secret_fields_go_empty_ones_stay() -> None:
    assert redact_json({"password": "hunter22", "token": "", "session_ticket_keys": {"keys": [{"inline_bytes": "x"}]},
                        "port": 9080}) == {"password": REDACTED, "token": "", "session_ticket_keys": REDACTED,
                                           "port": 9080}


def test_known_secrets_are_the_galley_token_and_the_workload_tokens(tmp_path: Path) -> None:
    (tmp_path / "galley-token").write_text("galley-api-token-1\n")
    (tmp_path / "tokens").mkdir()
    (tmp_path / "tokens" / "productpage-v1").write_text(JWT)
    assert bug_report.known_secrets(tmp_path) == ("galley-api-token-1", JWT)
    assert bug_report.known_secrets(tmp_path / "nothing") == ()


def test_tail_keeps_the_end_from_a_line_start(tmp_path: Path) -> None:
    log = tmp_path / "pilot.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    kept = bug_report.tail(log, 30)
    # 30 bytes reach into "line 96", which is dropped whole.
    assert kept.splitlines()[1:] == ["line 97", "line 98", "line 99"]
    assert kept.startswith("[... 766 earlier bytes not included ...]")
    assert bug_report.tail(log, 10_000) == log.read_text()


def test_the_archive_holds_redacted_documents_under_bug_report(tmp_path: Path) -> None:
    archive = bug_report.Archive(secrets=("galley-api-token-1",))
    archive.add_json("proxies/a.default/config_dump.json", {"private_key": {"inline_string": KEY}, "name": "a"})
    archive.add_text("logs/galley.log", "refused galley-api-token-1\n")
    target = tmp_path / "report.tar.gz"
    archive.write(target)
    with tarfile.open(target) as tar:
        assert tar.getnames() == ["bug-report/proxies/a.default/config_dump.json", "bug-report/logs/galley.log"]
        dump = json.load(tar.extractfile("bug-report/proxies/a.default/config_dump.json"))  # type: ignore[arg-type]
        log = tar.extractfile("bug-report/logs/galley.log").read().decode()  # type: ignore[union-attr]
    assert dump == {"private_key": REDACTED, "name": "a"}
    assert log == f"refused {REDACTED}\n"
