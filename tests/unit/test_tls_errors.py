"""TLS failures that the test MariaDB cannot produce, classified as connect() does.

The integration tests (tests/integration/test_source_tls.py) fail real handshakes; here
are MySQL's own refusal of a plain connection (MariaDB answers "Access denied"), a
handshake cut short (transient), and a handshake without a common protocol.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pymysql
from myshift.config import SourceConfig
from myshift.errors import ConfigError, SourceUnavailableError
from myshift.source import classify
from myshift.tls import client_context, handshake_error

from tests.support.tls_mariadb import Authority

WHERE = "app@db.example.com:3306"


def source(**tls: str) -> SourceConfig:
    return SourceConfig(host="db.example.com", user="app", password_env="PW", tls=tls)


def failed(cause: BaseException | None = None, code: int = 2003) -> pymysql.err.OperationalError:
    """What pymysql raises: an OperationalError, the OSError behind it attached."""
    exc = pymysql.err.OperationalError(code, "Can't connect to MySQL server on 'db.example.com'")
    if cause is not None:
        exc.original_exception = cause
    return exc


def test_mysql_refusing_a_plain_connection_names_the_setting() -> None:
    exc = failed(code=3159)
    error = handshake_error(exc, source(mode="disabled"), WHERE)
    assert isinstance(error, ConfigError)
    assert str(error).startswith(f"MySQL {WHERE}: the server requires TLS")
    assert "source.tls.mode disabled" in str(error)


def test_a_handshake_cut_short_stays_transient() -> None:
    exc = failed(ssl.SSLEOFError(8, "EOF occurred in violation of protocol"))
    assert handshake_error(exc, source(mode="required"), WHERE) is None
    assert isinstance(classify(exc, WHERE), SourceUnavailableError)
    assert (
        handshake_error(failed(ConnectionRefusedError(111)), source(mode="required"), WHERE) is None
    )


def test_no_common_protocol_is_terminal() -> None:
    cause = ssl.SSLError(1, "[SSL: UNSUPPORTED_PROTOCOL] unsupported protocol")
    error = handshake_error(failed(cause), source(mode="required"), WHERE)
    assert isinstance(error, ConfigError)
    assert "TLS handshake failed with source.tls.mode required" in str(error)
    assert "no TLS version or cipher in common" in str(error)


def test_contexts_check_what_each_mode_promises(tmp_path: Path) -> None:
    Authority.create(tmp_path / "ca.pem", "test CA")
    bundle = str(tmp_path / "ca.pem")
    contexts = {
        mode: client_context(source(**tls).tls, "db.example.com")
        for mode, tls in {
            "required": {"mode": "required"},
            "verify_ca": {"mode": "verify_ca", "ca_bundle": bundle},
            "verify_identity": {"mode": "verify_identity", "ca_bundle": bundle},
        }.items()
    }
    checks = {
        mode: (context.verify_mode, context.check_hostname) for mode, context in contexts.items()
    }
    assert checks == {
        "required": (ssl.CERT_NONE, False),
        "verify_ca": (ssl.CERT_REQUIRED, False),
        "verify_identity": (ssl.CERT_REQUIRED, True),
    }
    assert all(c.minimum_version >= ssl.TLSVersion.TLSv1_2 for c in contexts.values())
