"""MySQL client/server protocol packets, built by hand for the text reader's tests."""

from __future__ import annotations


def packet(seq: int, payload: bytes) -> bytes:
    """A packet: 3-byte little-endian length, sequence number, payload."""
    return len(payload).to_bytes(3, "little") + bytes([seq % 256]) + payload


def lenenc(value: bytes) -> bytes:
    """A length-encoded string, as a text-protocol row carries each value."""
    if len(value) < 251:
        return bytes([len(value)]) + value
    if len(value) < 1 << 16:
        return b"\xfc" + len(value).to_bytes(2, "little") + value
    return b"\xfd" + len(value).to_bytes(3, "little") + value


EOF_PACKET = b"\xfe\x00\x00\x02\x00"
"""The payload of an EOF packet (no warnings, status SERVER_STATUS_AUTOCOMMIT)."""


def error_packet(code: int, message: str) -> bytes:
    """The payload of an ERR packet with `code`, SQLSTATE HY000 and `message`."""
    return b"\xff" + code.to_bytes(2, "little") + b"#HY000" + message.encode()
