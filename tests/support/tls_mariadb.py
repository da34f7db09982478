"""A second, throw-away MariaDB that only speaks TLS, and the CAs the tests need for it.

`running_tls_mariadb(directory)` generates a CA and a server certificate for
`localhost`/`127.0.0.1` (with `cryptography`), initializes a data directory with
`mariadb-install-db`, starts `mariadbd` on a free loopback port with
`require_secure_transport=ON`, creates a password account, and stops the server on exit.
`server.serving(...)` swaps the certificate the server presents (`FLUSH SSL`), so a
test can show a certificate for another name, or one from another CA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pymysql
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from myshift.local.engine import free_port

from tests.support.mariadb import execute

MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
USER = "tls_reader"
PASSWORD = "Tls-Reader-Pw-4711"  # a throw-away server's test account
_START_SECONDS = 30


@dataclass
class Authority:
    """A throw-away CA: its certificate (written as PEM to `path`) and key."""

    path: Path
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls, path: Path, name: str) -> Authority:
        """A self-signed CA certificate, valid for a day."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        certificate = (
            _builder(subject, subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return cls(path, certificate, key)

    def issue(self, names: list[str], cert_path: Path, key_path: Path) -> None:
        """A server certificate for `names` (DNS names or IP addresses, as SANs)."""
        key = ec.generate_private_key(ec.SECP256R1())
        alternatives: list[x509.GeneralName] = []
        for name in names:
            try:
                alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alternatives.append(x509.DNSName(name))
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
        certificate = (
            _builder(subject, self.certificate.subject, key.public_key())
            .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )


@dataclass
class TlsMariaDB:
    """The running server: where it listens, its account, the CAs to check it with."""

    directory: Path
    port: int
    ca: Authority  # signed the certificate the server presents (unless `serving` says)
    other_ca: Authority  # signed nothing the server has
    host: str = "127.0.0.1"
    user: str = USER
    password: str = PASSWORD
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def socket_path(self) -> Path:
        return self.directory / "mariadbd.sock"

    @property
    def cert_path(self) -> Path:
        return self.directory / "server-cert.pem"

    @property
    def key_path(self) -> Path:
        return self.directory / "server-key.pem"

    def admin(self) -> pymysql.Connection:
        """root over the Unix socket (secure transport as far as the server is concerned)."""
        return pymysql.connect(
            unix_socket=str(self.socket_path), user="root", password="", autocommit=True
        )

    def admin_execute(self, *statements: str) -> None:
        with self.admin() as conn:
            execute(conn, *statements)

    @contextmanager
    def serving(self, names: list[str], authority: Authority | None = None) -> Iterator[None]:
        """Present a certificate for `names` (from `authority`, default `ca`) meanwhile."""
        (authority or self.ca).issue(names, self.cert_path, self.key_path)
        self.admin_execute("FLUSH SSL")
        try:
            yield
        finally:
            self.ca.issue(["localhost", "127.0.0.1"], self.cert_path, self.key_path)
            self.admin_execute("FLUSH SSL")


def _start(server: TlsMariaDB) -> None:
    data = server.directory / "data"
    user = ["--user=root"] if os.geteuid() == 0 else []  # mariadbd refuses root otherwise
    installed = subprocess.run(
        [
            INSTALL_DB,
            "--no-defaults",
            f"--datadir={data}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            *user,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if installed.returncode != 0:
        raise RuntimeError(f"mariadb-install-db failed: {installed.stderr[-2000:]}")
    log = server.directory / "mariadbd.err"
    server.process = subprocess.Popen(
        [
            MARIADBD,
            "--no-defaults",
            f"--datadir={data}",
            *user,
            f"--port={server.port}",
            "--bind-address=127.0.0.1",
            "--skip-networking=0",
            f"--socket={server.socket_path}",
            f"--pid-file={server.directory / 'mariadbd.pid'}",
            f"--log-error={log}",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=16M",
            f"--ssl-ca={server.ca.path}",
            f"--ssl-cert={server.cert_path}",
            f"--ssl-key={server.key_path}",
            "--require-secure-transport=ON",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + _START_SECONDS
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"mariadbd exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            server.admin().close()
            return
        except pymysql.MySQLError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"mariadbd did not answer within {_START_SECONDS} s") from None
            time.sleep(0.1)


@contextmanager
def running_tls_mariadb(directory: Path) -> Iterator[TlsMariaDB]:
    """Start the TLS-only server in `directory`; stop it (and wait for it) on exit."""
    ca = Authority.create(directory / "ca.pem", "myshift test CA")
    other_ca = Authority.create(directory / "other-ca.pem", "myshift other test CA")
    server = TlsMariaDB(directory=directory, port=free_port(), ca=ca, other_ca=other_ca)
    ca.issue(["localhost", "127.0.0.1"], server.cert_path, server.key_path)
    try:
        _start(server)
        server.admin_execute(
            f"CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'",
            f"GRANT SELECT ON *.* TO '{USER}'@'%'",
        )
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            server.process.terminate()
            try:
                server.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()
