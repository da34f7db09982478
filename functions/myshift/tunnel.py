"""SSH bastion: a local port forward to the MySQL host, for the operator's CLI.

`open_source(source, password)` is what the CLI uses: a MySQL connection, through the
pipeline's bastion (`source.ssh`) when it has one. The forward listens on 127.0.0.1 on
a free port and opens one `direct-tcpip` channel per connection, so MySQL sees the
connection coming from the bastion. TLS runs end to end inside the tunnel, and
`verify_identity` checks the certificate against `source.host`, not the local end. The
Lambda functions never come here: in AWS they reach MySQL from inside the VPC.

Errors are one line and never hold key material: a missing or unreadable key, an
unknown or changed host key, or a refused login is a `ConfigError`; an unreachable
bastion, or a bastion that cannot reach MySQL, a `SourceUnavailableError`.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pymysql

from myshift.config import SourceConfig, SshConfig
from myshift.errors import ConfigError, SourceQueryError, SourceUnavailableError
from myshift.source import connect

log = logging.getLogger(__name__)

LOCALHOST = "127.0.0.1"
_BUFFER = 64 * 1024
# Keepalives stop a NAT or the bastion from dropping an idle tunnel during a long count.
_KEEPALIVE_SECONDS = 30
# How often blocked threads look up to see whether the tunnel is closing.
_POLL_SECONDS = 0.2


def _one_line(text: object) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""


class _RejectUnknown(paramiko.MissingHostKeyPolicy):
    """Strict checking: a bastion missing from known_hosts is refused, with its fingerprint."""

    def __init__(self, ssh: SshConfig, known_hosts: Path) -> None:
        self.ssh = ssh
        self.known_hosts = known_hosts

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        raise ConfigError(
            f"SSH bastion {self.ssh.where}: host key {key.fingerprint} is not in "
            f"{self.known_hosts}; after checking it, add it there (ssh-keyscan -p "
            f"{self.ssh.port} {self.ssh.host}) or pin it with source.ssh.host_key_fingerprint"
        )


class _PinnedFingerprint(paramiko.MissingHostKeyPolicy):
    """The bastion's host key must have the pipeline's `host_key_fingerprint`."""

    def __init__(self, ssh: SshConfig) -> None:
        self.ssh = ssh

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        if key.fingerprint != self.ssh.host_key_fingerprint:
            raise ConfigError(
                f"SSH bastion {self.ssh.where}: host key {key.fingerprint} does not match "
                f"source.ssh.host_key_fingerprint {self.ssh.host_key_fingerprint}"
            )


class _AcceptAny(paramiko.MissingHostKeyPolicy):
    """`strict_host_key_checking: false`: accept, but leave a trace of what was accepted."""

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        log.warning("SSH bastion %s: accepting unchecked host key %s", hostname, key.fingerprint)


def _load_key(ssh: SshConfig) -> paramiko.PKey:
    path = ssh.key_path()
    try:
        return paramiko.PKey.from_path(path)
    except paramiko.PasswordRequiredException:
        raise ConfigError(
            f"source.ssh.key_file: {path} is passphrase-protected; give an unencrypted key "
            f"for SSH bastion {ssh.where}"
        ) from None
    except (paramiko.SSHException, OSError, ValueError, TypeError) as exc:
        # The parser's message could quote the file: name only the exception's class.
        raise ConfigError(
            f"source.ssh.key_file: {path} is not a private key myshift can read "
            f"({type(exc).__name__})"
        ) from None


def ssh_client(ssh: SshConfig, timeout_seconds: float = 10) -> paramiko.SSHClient:
    """A logged-in SSH client to the bastion, its host key checked as configured."""
    key = _load_key(ssh)
    client = paramiko.SSHClient()
    if ssh.host_key_fingerprint:
        client.set_missing_host_key_policy(_PinnedFingerprint(ssh))
    elif ssh.strict_host_key_checking:
        known_hosts = (ssh.known_hosts or Path("~/.ssh/known_hosts")).expanduser()
        if ssh.known_hosts and not known_hosts.is_file():
            raise ConfigError(f"source.ssh.known_hosts: {known_hosts} does not exist")
        if known_hosts.is_file():
            # System host keys are only read, never written back (unlike load_host_keys).
            client.load_system_host_keys(str(known_hosts))
        client.set_missing_host_key_policy(_RejectUnknown(ssh, known_hosts))
    else:
        client.set_missing_host_key_policy(_AcceptAny())
    try:
        client.connect(
            ssh.host,
            port=ssh.port,
            username=ssh.user,
            pkey=key,
            timeout=timeout_seconds,
            banner_timeout=timeout_seconds,
            auth_timeout=timeout_seconds,
            # Only the configured key: an agent's or ~/.ssh's keys would make the
            # outcome depend on the operator's machine.
            allow_agent=False,
            look_for_keys=False,
        )
    except ConfigError:
        client.close()
        raise
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise ConfigError(
            f"SSH bastion {ssh.where}: host key changed: got {exc.key.fingerprint}, "
            f"known_hosts has {exc.expected_key.fingerprint} (a man in the middle, or a "
            "rebuilt bastion: check before you update known_hosts)"
        ) from None
    except paramiko.AuthenticationException as exc:
        client.close()
        raise ConfigError(
            f"SSH bastion {ssh.where} refused the key source.ssh.key_file "
            f"{ssh.key_file} for user {ssh.user}: {_one_line(exc)}"
        ) from None
    except (OSError, paramiko.SSHException, EOFError) as exc:
        # Refused, timed out, unknown host name, not an SSH server at that port.
        client.close()
        reason = _one_line(exc) or type(exc).__name__
        raise SourceUnavailableError(f"SSH bastion {ssh.where} unreachable: {reason}") from None
    return client


class _Forward:
    """Listens on 127.0.0.1:<free port>; each connection becomes a channel to the target."""

    def __init__(self, transport: paramiko.Transport, ssh: SshConfig, host: str, port: int) -> None:
        self.transport = transport
        self.ssh = ssh
        self.target = (host, port)
        self.error: Exception | None = None  # why the last channel could not be opened
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind((LOCALHOST, 0))
        self._listener.listen(16)
        # A timeout, not close() from another thread: close does not wake accept on Linux.
        self._listener.settimeout(_POLL_SECONDS)
        self.address: tuple[str, int] = (LOCALHOST, self._listener.getsockname()[1])
        self._acceptor = threading.Thread(
            target=self._accept, name="myshift-ssh-accept", daemon=True
        )
        self._acceptor.start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                local, peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed
            local.setblocking(True)
            try:
                channel = self.transport.open_channel(
                    "direct-tcpip", self.target, peer, timeout=_KEEPALIVE_SECONDS
                )
            except paramiko.ChannelException as exc:
                self.error = self._channel_error(exc.code, exc.text)
                local.close()  # after setting the error: the client reads it on EOF
                continue
            except (paramiko.SSHException, OSError, EOFError) as exc:
                reason = _one_line(exc) or type(exc).__name__
                self.error = SourceUnavailableError(
                    f"SSH bastion {self.ssh.where}: tunnel lost ({reason})"
                )
                local.close()
                continue
            pump = threading.Thread(
                target=self._pump, args=(local, channel), name="myshift-ssh-pump", daemon=True
            )
            self._threads.append(pump)
            pump.start()

    def _channel_error(self, code: int, text: str) -> Exception:
        host, port = self.target
        if code == paramiko.common.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED:
            return ConfigError(
                f"SSH bastion {self.ssh.where} does not allow port forwarding to {host}:{port} "
                "(AllowTcpForwarding / PermitOpen on the bastion)"
            )
        return SourceUnavailableError(
            f"SSH bastion {self.ssh.where} cannot reach MySQL at {host}:{port}: {text}"
        )

    def _pump(self, local: socket.socket, channel: paramiko.Channel) -> None:
        """Copy bytes both ways until either side closes or the tunnel is closing."""
        try:
            while not self._closing.is_set():
                watched: list[Any] = [local, channel]
                readable, _, _ = select.select(watched, [], [], _POLL_SECONDS)
                if local in readable:
                    data = local.recv(_BUFFER)
                    if not data:
                        break
                    channel.sendall(data)
                if channel in readable:
                    data = channel.recv(_BUFFER)
                    if not data:
                        break
                    local.sendall(data)
        except (OSError, paramiko.SSHException, EOFError):
            pass  # either end went away; both are closed below
        finally:
            channel.close()
            with contextlib.suppress(OSError):
                local.shutdown(socket.SHUT_RDWR)
            local.close()

    def close(self) -> None:
        """Stop accepting, end every forwarded connection, wait for the threads."""
        self._closing.set()
        self._listener.close()
        self._acceptor.join(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)


@contextlib.contextmanager
def open_tunnel(
    ssh: SshConfig, host: str, port: int, timeout_seconds: float = 10
) -> Iterator[tuple[str, int]]:
    """Forward a free port on 127.0.0.1 to `host:port` as the bastion sees it.

    Yields the local `(host, port)` to connect to; everything is closed on exit.
    """
    with _tunnel(ssh, host, port, timeout_seconds) as forward:
        yield forward.address


@contextlib.contextmanager
def _tunnel(ssh: SshConfig, host: str, port: int, timeout_seconds: float) -> Iterator[_Forward]:
    client = ssh_client(ssh, timeout_seconds)
    try:
        transport = client.get_transport()
        if transport is None:  # cannot happen after a successful connect
            raise SourceUnavailableError(f"SSH bastion {ssh.where}: no transport")
        transport.set_keepalive(_KEEPALIVE_SECONDS)
        forward = _Forward(transport, ssh, host, port)
        log.info("SSH tunnel %s:%d -> %s -> %s:%d open", *forward.address, ssh.where, host, port)
        try:
            yield forward
        finally:
            forward.close()
    finally:
        client.close()


@contextlib.contextmanager
def open_source(
    source: SourceConfig, password: str, *, utc: bool = True
) -> Iterator[pymysql.Connection]:
    """A MySQL connection, through `source.ssh` when set; closed (tunnel too) on exit."""
    if source.ssh is None:
        conn = connect(source, password, utc=utc)
        try:
            yield conn
        finally:
            conn.close()
        return
    ssh = source.ssh
    with _tunnel(ssh, source.host, source.port, source.connect_timeout_seconds) as forward:
        try:
            # Dial the forward; TLS still checks the certificate against source.host.
            conn = connect(source, password, utc=utc, via=forward.address)
        except (SourceUnavailableError, SourceQueryError, ConfigError) as exc:
            # The forward knows why better than "lost connection" on the local port.
            if isinstance(exc, SourceUnavailableError) and forward.error is not None:
                raise forward.error from None
            where = f"{source.user}@{source.host}:{source.port}"
            message = str(exc).replace(where, f"{where} (through SSH bastion {ssh.where})", 1)
            raise type(exc)(message) from None
        try:
            yield conn
        finally:
            conn.close()
