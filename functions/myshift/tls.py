"""TLS to MySQL: pymysql's arguments for `source.tls`, and handshake failures explained.

`connect_arguments(source)` turns the pipeline's `tls.mode` into what pymysql takes: no
TLS at all for `disabled` (not pymysql's default, which tries TLS and silently falls
back to plain TCP), else an `ssl.SSLContext` that insists on TLS and checks as much of
the server's certificate as the mode asks. The context checks the certificate's name
against `source.host` even when pymysql dials another address (the local end of an SSH
tunnel): pymysql hands `server_hostname=<the address it dialled>` to `wrap_socket`.

`handshake_error(...)` turns a failed handshake into one terminal `ConfigError` naming
the account, the mode and what to change: a certificate that does not verify, a server
that offers no TLS, or a server that requires TLS from a `disabled` pipeline. Retrying
cannot fix any of them, and the message never holds the password. A ConfigError rather
than a SourceQueryError: the remedy is the pipeline's `source.tls` (or the server's
certificate), as with an SSH host key that does not match (`myshift.tunnel`). Only an
EOF during the handshake (the server or a proxy dropped the connection) stays transient.
"""

from __future__ import annotations

import ssl
from typing import Any

import pymysql
from pymysql.constants import CLIENT, CR, ER

from myshift.config import RDS_CA_BUNDLE_URL, SourceConfig, TlsConfig
from myshift.errors import ConfigError

# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH / X509_V_ERR_IP_ADDRESS_MISMATCH.
_NAME_MISMATCH = {62, 64}
# MySQL's ER_SECURE_TRANSPORT_REQUIRED: require_secure_transport refused a plain
# connection (MariaDB has no such error: see `refused_plain_login_hint`).
_SECURE_TRANSPORT_REQUIRED = 3159


class _ServerNameContext(ssl.SSLContext):
    """An SSLContext that checks the certificate against one name, whatever was dialled.

    pymysql calls `wrap_socket(sock, server_hostname=<its host argument>)`; through an
    SSH tunnel that is 127.0.0.1, while the certificate names the real MySQL host.
    """

    server_name: str

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        kwargs["server_hostname"] = self.server_name
        return super().wrap_socket(*args, **kwargs)


def client_context(tls: TlsConfig, server_name: str) -> ssl.SSLContext:
    """The client context for a mode other than `disabled`; the name is also sent as SNI."""
    context = _ServerNameContext(ssl.PROTOCOL_TLS_CLIENT)  # TLS 1.2+, verifying by default
    context.server_name = server_name
    if tls.ca_path is None:  # `required`: encrypted, the certificate taken as it comes
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_verify_locations(cafile=str(tls.ca_path))
        context.check_hostname = tls.mode == "verify_identity"
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def connect_arguments(source: SourceConfig) -> dict[str, Any]:
    """pymysql.connect's TLS keyword arguments for `source.tls` (names checked: source.host)."""
    if source.tls.mode == "disabled":
        return {"ssl_disabled": True}
    return {"ssl": client_context(source.tls, source.host)}


def describe(tls: TlsConfig) -> str:
    """`source.tls.mode X (ca_bundle Y)`, for messages."""
    bundle = f", ca_bundle {tls.ca_path}" if tls.ca_path is not None else ""
    return f"source.tls.mode {tls.mode}{bundle}"


def handshake_error(
    exc: pymysql.err.OperationalError, source: SourceConfig, where: str
) -> ConfigError | None:
    """The ConfigError for a connection that failed over TLS, or None when it did not."""
    cause = getattr(exc, "original_exception", None)
    code = exc.args[0] if exc.args else None
    setting = describe(source.tls)
    if code == _SECURE_TRANSPORT_REQUIRED:
        return ConfigError(
            f"MySQL {where}: the server requires TLS (require_secure_transport) and "
            f"{setting}: set source.tls (mode verify_identity with ca_bundle, or required)"
        )
    if code == CR.CR_SSL_CONNECTION_ERROR:
        return ConfigError(
            f"MySQL {where}: the server offers no TLS and {setting} requires it: enable "
            "TLS on the server, or set source.tls.mode: disabled (on a trusted network only)"
        )
    # An EOF in the handshake is a dropped connection (a restart, a proxy): transient.
    if not isinstance(cause, ssl.SSLError) or isinstance(cause, ssl.SSLEOFError):
        return None
    if isinstance(cause, ssl.SSLCertVerificationError):
        reason = cause.verify_message or "certificate verify failed"
        if cause.verify_code in _NAME_MISMATCH:
            advice = (
                f"the certificate does not name {source.host}: set source.host to a name "
                "it holds (for RDS/Aurora the instance or cluster endpoint, not an IP "
                "address or a CNAME of your own), or use mode verify_ca (the CA only)"
            )
        else:
            advice = (
                "the certificate does not chain to source.tls.ca_bundle: give the CA that "
                f"issued it (for Amazon RDS/Aurora {RDS_CA_BUNDLE_URL})"
            )
        return ConfigError(
            f"MySQL {where}: TLS handshake failed with {setting}: {reason}; {advice}"
        )
    reason = getattr(cause, "reason", None) or (str(cause) or type(cause).__name__).splitlines()[0]
    return ConfigError(
        f"MySQL {where}: TLS handshake failed with {setting}: {reason} (no TLS version or "
        "cipher in common, or the server refused the handshake)"
    )


def refused_plain_login_hint(
    exc: pymysql.err.OperationalError, source: SourceConfig, server_capabilities: int
) -> str | None:
    """What to add when a server that offers TLS refuses a `disabled` login.

    MariaDB's require_secure_transport refuses a plain login as "Access denied" (MySQL
    says so plainly, see `handshake_error`), which reads like a wrong password.
    """
    code = exc.args[0] if exc.args else None
    if (
        code == ER.ACCESS_DENIED_ERROR
        and source.tls.mode == "disabled"
        and server_capabilities & CLIENT.SSL
    ):
        return (
            "if the password is right, the server may require TLS (MariaDB's "
            "require_secure_transport refuses a plain login so): set source.tls "
            "(mode verify_identity with ca_bundle, or required)"
        )
    return None
