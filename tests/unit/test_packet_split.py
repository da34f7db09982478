"""The packet splitter of the text reader: the compiled one and its Python reference.

`myshift_packets.split` (C) and `source.split_rows_python` must return the same tuple
for any bytes at all: well-formed results cut anywhere, broken streams, plain noise.
"""

from __future__ import annotations

from collections.abc import Callable

import myshift_packets
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from myshift import source
from myshift.source import (
    SPLIT_END,
    SPLIT_ERROR,
    SPLIT_MORE,
    SPLIT_NULL,
    SPLIT_OVERSIZE,
    SPLIT_SEQUENCE,
    split_rows_python,
)

from tests.support.packets import EOF_PACKET as EOF_PAYLOAD
from tests.support.packets import lenenc, packet

Split = Callable[[bytes | bytearray, int, int, int], tuple[bytes, int, int, int, int]]

SPLITS = pytest.mark.parametrize(
    "split", [myshift_packets.split, split_rows_python], ids=["c", "python"]
)

MAX_PACKET = 0xFFFFFF


def header(length: int, seq: int) -> bytes:
    return length.to_bytes(3, "little") + bytes([seq % 256])


def test_the_compiled_splitter_is_built_and_used() -> None:
    # Deliberately no skip: `make venv` builds it, and a missing build must fail CI.
    assert source.split_rows is myshift_packets.split


# --- the two splitters agree on anything --------------------------------------------------


@st.composite
def _value(draw: st.DrawFn) -> bytes:
    """A row's value: mostly short, some with a 0xFC or 0xFD length prefix."""
    size = draw(st.sampled_from(["short", "short", "short", "fc", "fc-top", "fd"]))
    if size == "short":
        return draw(st.binary(max_size=250))  # 1-byte length
    n = {"fc": (251, 400), "fc-top": (65_400, 65_535), "fd": (65_536, 70_000)}[size]
    return bytes([draw(st.integers(0, 255))]) * draw(st.integers(*n))


_PAYLOADS = st.one_of(
    st.just(EOF_PAYLOAD),
    st.binary(max_size=30).map(lambda rest: b"\xff" + rest),  # an error packet
    st.just(b"\xfb"),  # a NULL value
    st.just(b""),  # a zero-length packet
    st.binary(min_size=8, max_size=20).map(lambda rest: b"\xfe" + rest),  # 8-byte length
    st.binary(min_size=1, max_size=12),  # any payload: lenenc prefixes that lie, etc.
)


@st.composite
def _stream(draw: st.DrawFn) -> tuple[bytes | bytearray, int, int, int]:
    """A stream of packets cut at a random point, and where and how to split it."""
    first_seq = draw(st.integers(0, 255))
    seq = first_seq
    out = bytearray()
    boundaries = [(0, first_seq)]  # where each packet starts, and the seq it should carry
    for _ in range(draw(st.integers(0, 16))):
        kind = draw(st.integers(0, 29))
        wrong = draw(st.integers(0, 19)) == 0
        packet_seq = (seq + draw(st.integers(1, 255))) % 256 if wrong else seq
        if kind == 0:  # a header claiming 16 MB: its payload whole or cut short
            whole = draw(st.booleans())
            payload = b"\x01" * (MAX_PACKET if whole else draw(st.integers(0, 100)))
            out += header(MAX_PACKET, packet_seq) + payload
        elif kind < 2:
            out += packet(packet_seq, EOF_PAYLOAD)
        elif kind < 5:  # anything but a row
            out += packet(packet_seq, draw(_PAYLOADS))
        else:
            out += packet(packet_seq, lenenc(draw(_value())))
        seq = (seq + 1) % 256
        boundaries.append((len(out), seq))
    cut = draw(
        st.one_of(
            st.just(len(out)),
            st.sampled_from([b for b, _ in boundaries]),
            st.integers(0, len(out)),
        )
    )
    at_boundary = [b for b in boundaries if b[0] <= cut]
    if draw(st.integers(0, 5)):
        pos, seq = draw(st.sampled_from(at_boundary))
        if draw(st.integers(0, 9)) == 0:
            seq = draw(st.integers(0, 255))
    else:
        pos, seq = draw(st.integers(0, cut)), draw(st.integers(0, 255))
    buf = bytes(out[:cut]) if draw(st.booleans()) else out[:cut]
    return buf, pos, seq, draw(st.integers(1, 50))


def _agree(buf: bytes | bytearray, pos: int, seq: int, max_rows: int) -> None:
    expected = split_rows_python(buf, pos, seq, max_rows)
    got = myshift_packets.split(buf, pos, seq, max_rows)
    assert type(got[0]) is bytes
    assert got == expected


@given(_stream())
@settings(max_examples=300, deadline=None)
def test_c_and_python_agree_on_packet_streams(case: tuple) -> None:
    _agree(*case)


@given(
    st.binary(max_size=300),
    st.data(),
    st.integers(0, 255),
    st.integers(1, 50),
)
@settings(max_examples=300, deadline=None)
def test_c_and_python_agree_on_noise(
    buf: bytes, data: st.DataObject, seq: int, max_rows: int
) -> None:
    _agree(buf, data.draw(st.integers(0, len(buf))), seq, max_rows)


# --- each status, exactly -------------------------------------------------------------


@SPLITS
def test_rows_then_the_end(split: Split) -> None:
    buf = packet(7, b"\x01a") + packet(8, b"\x02bc") + packet(9, EOF_PAYLOAD)
    assert split(buf, 0, 7, 10) == (b"a\nbc\n", 2, 13, 9, SPLIT_END)


@SPLITS
def test_length_prefixes(split: Split) -> None:
    values = [b"", b"x" * 250, b"y" * 251, b"z" * 65_535, b"w" * 65_536, b"v" * 70_000]
    buf = b"".join(packet(i, lenenc(v)) for i, v in enumerate(values))
    buf += packet(len(values), EOF_PAYLOAD)
    expected = b"".join(v + b"\n" for v in values)
    end = len(buf) - 4 - len(EOF_PAYLOAD)
    assert split(buf, 0, 0, 100) == (expected, len(values), end, len(values), SPLIT_END)
    # bytearray in, bytes out
    assert split(bytearray(buf), 0, 0, 100) == (expected, len(values), end, len(values), SPLIT_END)


@SPLITS
def test_an_error_packet(split: Split) -> None:
    buf = packet(0, b"\x01a") + packet(1, b"\xff\x25\x05#HY000boom")
    assert split(buf, 0, 0, 10) == (b"a\n", 1, 6, 1, SPLIT_ERROR)


@pytest.mark.parametrize(
    "payload",
    [
        b"\xfb",  # NULL
        b"",  # a zero-length packet
        b"\xfe" + (9).to_bytes(8, "little") + b"123456789",  # an 8-byte length
        b"\xfe" + b"\x00" * 8,  # length 9 exactly: not an EOF packet
        b"\xfc\x01",  # a 3-byte prefix in a 2-byte packet
        b"\xfd\x00\x00",  # a 4-byte prefix in a 3-byte packet
    ],
    ids=["null", "empty", "lenenc8", "fe-len9", "short-fc", "short-fd"],
)
@SPLITS
def test_a_null_value(split: Split, payload: bytes) -> None:
    buf = packet(4, b"\x01a") + packet(5, payload) + packet(6, b"\x01b")
    assert split(buf, 0, 4, 10) == (b"a\n", 1, 6, 5, SPLIT_NULL)


@SPLITS
def test_a_packet_of_16_mb(split: Split) -> None:
    buf = packet(0, b"\x01a") + header(MAX_PACKET, 1) + b"\xfe" + b"\x00" * (MAX_PACKET - 1)
    assert split(buf, 0, 0, 10) == (b"a\n", 1, 6, 1, SPLIT_OVERSIZE)
    # Cut short it is only an incomplete packet.
    assert split(buf[:100], 0, 0, 10) == (b"a\n", 1, 6, 1, SPLIT_MORE)


@SPLITS
def test_a_packet_out_of_sequence(split: Split) -> None:
    buf = packet(3, b"\x01a") + packet(9, b"\x01b")
    assert split(buf, 0, 3, 10) == (b"a\n", 1, 6, 4, SPLIT_SEQUENCE)
    assert split(buf, 0, 4, 10) == (b"", 0, 0, 4, SPLIT_SEQUENCE)


@SPLITS
def test_sequence_numbers_wrap_around(split: Split) -> None:
    buf = packet(254, b"\x01a") + packet(255, b"\x01b") + packet(0, b"\x01c")
    buf += packet(1, EOF_PAYLOAD)
    assert split(buf, 0, 254, 10) == (b"a\nb\nc\n", 3, 18, 1, SPLIT_END)
    assert split(buf, 6, 255, 1) == (b"b\n", 1, 12, 0, SPLIT_MORE)


@SPLITS
def test_max_rows_stops_mid_buffer(split: Split) -> None:
    buf = b"".join(packet(i, lenenc(b"r%d" % i)) for i in range(5)) + packet(5, EOF_PAYLOAD)
    assert split(buf, 0, 0, 2) == (b"r0\nr1\n", 2, 14, 2, SPLIT_MORE)
    assert split(buf, 14, 2, 2) == (b"r2\nr3\n", 2, 28, 4, SPLIT_MORE)
    assert split(buf, 28, 4, 2) == (b"r4\n", 1, 35, 5, SPLIT_END)


@SPLITS
def test_an_incomplete_packet(split: Split) -> None:
    buf = packet(0, b"\x01a") + packet(1, b"\x05hello")
    for cut in range(6, len(buf)):  # the header cut, or the payload
        assert split(buf[:cut], 0, 0, 10) == (b"a\n", 1, 6, 1, SPLIT_MORE), cut
    assert split(buf, 0, 0, 10) == (b"a\nhello\n", 2, len(buf), 2, SPLIT_MORE)
    assert split(b"", 0, 0, 10) == (b"", 0, 0, 0, SPLIT_MORE)
    assert split(buf, len(buf), 2, 10) == (b"", 0, len(buf), 2, SPLIT_MORE)


@pytest.mark.parametrize("pos, seq", [(-1, 0), (8, 0), (100, 0), (0, -1), (0, 256)])
def test_the_compiled_splitter_refuses_out_of_range_arguments(pos: int, seq: int) -> None:
    buf = packet(0, b"\x01a") + b"x"  # 7 bytes: pos 7 is valid, its end
    assert myshift_packets.split(buf, 7, 0, 1) == (b"", 0, 7, 0, SPLIT_MORE)
    with pytest.raises(ValueError, match="out of range"):
        myshift_packets.split(buf, pos, seq, 1)
