"""TLS to MySQL and MySQL 8 logins, against real servers.

A second MariaDB (tests/support/tls_mariadb.py) runs with `require_secure_transport=ON`
and a certificate from a CA generated here: each `source.tls.mode` connects, or fails
with one terminal line naming the account and the setting. The test server's password
never appears in a message. pymysql's "cryptography is required" RuntimeError is raised
by pymysql's own code during a real login to the test MariaDB (which has no
caching_sha2_password) and becomes a ConfigError saying what to do.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
from myshift.config import SourceConfig, SshConfig, load_pipeline_file
from myshift.errors import ConfigError, SourceQueryError, TerminalError
from myshift.source import connect, query_all
from myshift.tunnel import open_source
from pymysql import _auth

from tests.conftest import MYSQL
from tests.support.sshd import running_sshd, ssh_settings
from tests.support.tls_mariadb import TlsMariaDB, running_tls_mariadb

PASSWORD_ENV = "MYSHIFT_TLS_TEST_PASSWORD"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsMariaDB]:
    """The TLS-only MariaDB, for this module."""
    with running_tls_mariadb(tmp_path_factory.mktemp("tls-mariadb")) as running:
        yield running


def source(server: TlsMariaDB, host: str | None = None, **tls: Any) -> SourceConfig:
    """The test account on `server` (by `host`, default 127.0.0.1), with `tls`."""
    return SourceConfig(
        host=host or server.host,
        port=server.port,
        user=server.user,
        password_env=PASSWORD_ENV,
        connect_timeout_seconds=5,
        tls=tls,
    )


def cipher(conn: pymysql.Connection) -> str:
    """The session's TLS cipher as the server sees it ('' when the connection is plain)."""
    try:
        ((_, value),) = query_all(conn, "SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        return str(value)
    finally:
        conn.close()


def refusal(config: SourceConfig, password: str, error: type[Exception] = ConfigError) -> str:
    """The one-line message `connect` fails with; checked for the password."""
    with pytest.raises(error) as raised:
        connect(config, password)
    message = str(raised.value)
    assert "\n" not in message and (not password or password not in message), message
    assert isinstance(raised.value, TerminalError), "a retry cannot fix it"
    return message


# --- each mode against a server that requires TLS -------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_verify_identity_with_the_right_ca_connects_encrypted(
    server: TlsMariaDB, tmp_path: Path, host: str
) -> None:
    """Through a pipeline file: ca_bundle relative to it, the default mode for a bundle."""
    shutil.copy(server.ca.path, tmp_path / "mysql-ca.pem")
    path = tmp_path / "tls.yml"
    path.write_text(
        "name: tls\n"
        f"source: {{host: {host}, port: {server.port}, user: {server.user}, "
        f"password_env: {PASSWORD_ENV}, tls: {{ca_bundle: mysql-ca.pem}}}}\n"
        "target: {database: dev, schema: dw, workgroup: wg}\n"
        "tables: [{name: shop.orders, cursor: updated_at, primary_key: [id]}]\n"
    )
    config = load_pipeline_file(path).source
    assert config.tls.mode == "verify_identity"
    assert cipher(connect(config, server.password))


def test_required_encrypts_without_checking_the_certificate(server: TlsMariaDB) -> None:
    with server.serving(["db.example.invalid"], authority=server.other_ca):
        assert cipher(connect(source(server, mode="required"), server.password))


def test_disabled_is_refused_by_the_server_with_a_hint(server: TlsMariaDB) -> None:
    message = refusal(source(server, mode="disabled"), server.password, SourceQueryError)
    assert message.startswith(f"MySQL {server.user}@127.0.0.1:{server.port}: (1045)")
    assert "the server may require TLS" in message and "source.tls" in message


def test_verify_ca_with_another_ca_fails_clearly(server: TlsMariaDB) -> None:
    config = source(server, mode="verify_ca", ca_bundle=str(server.other_ca.path))
    message = refusal(config, server.password)
    assert message.startswith(
        f"MySQL {server.user}@127.0.0.1:{server.port}: TLS handshake failed with "
        f"source.tls.mode verify_ca, ca_bundle {server.other_ca.path}: "
    )
    assert "does not chain to source.tls.ca_bundle" in message


def test_a_certificate_for_another_name_fails_verify_identity_but_passes_verify_ca(
    server: TlsMariaDB,
) -> None:
    bundle = str(server.ca.path)
    with server.serving(["db.example.invalid"]):
        message = refusal(source(server, mode="verify_identity", ca_bundle=bundle), server.password)
        assert "source.tls.mode verify_identity" in message
        assert "the certificate does not name 127.0.0.1" in message
        assert cipher(connect(source(server, mode="verify_ca", ca_bundle=bundle), server.password))


def test_required_against_a_server_without_tls_fails_clearly() -> None:
    """The shared test MariaDB runs without TLS (checked: skipped where it has it)."""
    plain = SourceConfig(**MYSQL, password_env="MYSQL_PASSWORD", tls={"mode": "required"})
    with pymysql.connect(**MYSQL, password="") as conn, conn.cursor() as cursor:
        cursor.execute("SELECT @@have_ssl")
        (have_ssl,) = cursor.fetchone()
    if have_ssl == "YES":
        pytest.skip("the test MariaDB offers TLS")
    message = refusal(plain, "")
    assert "the server offers no TLS and source.tls.mode required requires it" in message


# --- the certificate's name is source.host, whatever address is dialled ------------------


@pytest.fixture
def localhost_only(server: TlsMariaDB) -> Iterator[tuple[SourceConfig, SourceConfig]]:
    """The server presents a certificate for `localhost` alone; verify_identity sources
    for `localhost` (the name it holds) and for 127.0.0.1 (an address it does not)."""
    bundle = str(server.ca.path)
    with server.serving(["localhost"]):
        yield (
            source(server, host="localhost", mode="verify_identity", ca_bundle=bundle),
            source(server, mode="verify_identity", ca_bundle=bundle),
        )


def test_a_connection_dialled_elsewhere_checks_the_name_of_source_host(
    server: TlsMariaDB, localhost_only: tuple[SourceConfig, SourceConfig]
) -> None:
    """As through a tunnel: 127.0.0.1 dialled, `localhost` checked."""
    by_name, by_address = localhost_only
    assert cipher(connect(by_name, server.password, via=("127.0.0.1", server.port)))
    assert "does not name 127.0.0.1" in refusal(by_address, server.password)


def test_through_an_ssh_bastion_verify_identity_checks_source_host(
    server: TlsMariaDB,
    localhost_only: tuple[SourceConfig, SourceConfig],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The tunnel's local end is 127.0.0.1: the name checked is still source.host."""
    by_name, by_address = localhost_only
    with running_sshd(tmp_path_factory.mktemp("sshd")) as sshd:
        ssh = SshConfig.model_validate(ssh_settings(sshd))
        with open_source(by_name.model_copy(update={"ssh": ssh}), server.password) as conn:
            ((_, value),) = query_all(conn, "SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            assert value
        with pytest.raises(ConfigError) as error:
            with open_source(by_address.model_copy(update={"ssh": ssh}), server.password):
                pass
    message = str(error.value)
    assert message.startswith(f"MySQL {server.user}@127.0.0.1:{server.port} (through SSH bastion ")
    assert "does not name 127.0.0.1" in message and server.password not in message


# --- MySQL 8 logins without cryptography ----------------------------------------------


def rsa_login(password: bytes, salt: bytes) -> bytes:
    """What pymysql's caching_sha2_password full login does without TLS."""
    return _auth.sha2_rsa_encrypt(password, salt, b"")


def test_caching_sha2_without_cryptography_is_one_clear_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pymysql's own RuntimeError, raised in a real login; the message says what to do."""
    monkeypatch.setattr(_auth, "_have_cryptography", False)
    monkeypatch.setattr(_auth, "scramble_native_password", rsa_login)
    password = "Not-In-Any-Message-8"
    with pytest.raises(RuntimeError, match="'cryptography' package is required for"):
        pymysql.connect(**MYSQL, password=password)
    plain = SourceConfig(**MYSQL, password_env="MYSQL_PASSWORD")
    message = refusal(plain, password)
    account = f"{MYSQL['user']}@{MYSQL['host']}:{MYSQL['port']}"
    assert message.startswith(f"MySQL account {account} logs in with caching_sha2_password")
    assert "layers/requirements.txt" in message and "source.tls.mode" in message
    assert "IDENTIFIED WITH mysql_native_password" in message


def test_ed25519_without_pynacl_is_a_config_error_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nacl", None)  # `import nacl` fails as if absent
    monkeypatch.setattr(_auth, "scramble_native_password", lambda *_: _auth._init_nacl())
    plain = SourceConfig(**MYSQL, password_env="MYSQL_PASSWORD")
    assert "MariaDB's ed25519 plugin" in refusal(plain, "")


def test_any_other_runtime_error_is_not_disguised(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> bytes:
        raise RuntimeError("something else")

    monkeypatch.setattr(_auth, "scramble_native_password", broken)
    with pytest.raises(RuntimeError, match="something else"):
        connect(SourceConfig(**MYSQL, password_env="MYSQL_PASSWORD"), "")
