"""A server certificate that has expired, or soon will, is announced in the runtime log."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import trustme

from hookaido.config.model import TLSConfig
from hookaido.observability import log
from hookaido.server.tls import make_tls_server


def never_called(environ, start_response):
    raise AssertionError("not started")


def certificate_files(tmp_path, not_before: datetime, not_after: datetime) -> TLSConfig:
    leaf = trustme.CA().issue_cert("127.0.0.1", not_before=not_before, not_after=not_after)
    leaf.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "server.pem"))
    return TLSConfig(cert_file=str(tmp_path / "server.pem"), key_file=str(tmp_path / "server.key"))


@pytest.fixture
def runtime_log(tmp_path):
    path = tmp_path / "runtime.log"
    log.configure("info", "file", str(path))
    yield lambda: [json.loads(line) for line in path.read_text().splitlines()]
    log.configure("info", "stderr")


def test_a_certificate_expiring_within_two_weeks_is_a_warning(tmp_path, runtime_log):
    now = datetime.now(UTC)
    tls = certificate_files(tmp_path, now - timedelta(days=80), now + timedelta(days=3, hours=1))

    make_tls_server(never_called, "127.0.0.1", 0, tls, name="pull_api")
    (line,) = runtime_log()

    assert line["level"] == "WARN"
    assert line["msg"] == "tls_certificate_expiring"
    assert line["listener"] == "pull_api"
    assert line["days_left"] == 3
    assert line["cert_file"] == tls.cert_file


def test_an_expired_certificate_is_a_warning(tmp_path, runtime_log):
    now = datetime.now(UTC)
    tls = certificate_files(tmp_path, now - timedelta(days=90), now - timedelta(days=1))

    make_tls_server(never_called, "127.0.0.1", 0, tls, name="admin_api")
    (line,) = runtime_log()

    assert line["msg"] == "tls_certificate_expired"
    assert line["listener"] == "admin_api"


def test_a_certificate_with_time_left_says_nothing(tmp_path, runtime_log):
    now = datetime.now(UTC)
    tls = certificate_files(tmp_path, now - timedelta(days=1), now + timedelta(days=60))

    make_tls_server(never_called, "127.0.0.1", 0, tls, name="ingress")

    assert runtime_log() == []
