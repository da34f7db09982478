"""Row checksums that MySQL (MariaDB) and Redshift compute identically, per key range.

Content reconciliation (issue 14 c) compares what the warehouse *should* hold, given the
one type mapping of `myshift.schema`, with what it holds. Every column gets one canonical
text, produced by a MySQL expression from the source value and by a Redshift expression
from the warehouse value; the two agree exactly when the warehouse holds what the
extractor would load. `canonical_text` is the same definition in Python (the reference
the tests hold both engines to).

Canonical text of one value (`N` is NULL; no non-NULL text of any type is `N`):

| source type (target type)            | canonical text                                    |
| ------------------------------------ | ------------------------------------------------- |
| NULL; zero, partial, impossible date | `N`                                               |
| TINYINT..BIGINT [UNSIGNED], YEAR     | decimal integer: `-128`, `18446744073709551615`   |
| TINYINT(1) as boolean, BIT(1)        | `1` / `0` (BOOLEAN)                               |
| BIT(2..64)                           | the unsigned integer                              |
| DECIMAL(p,s), any p                  | exactly s decimals, leading zero: `-0.5000`, `12` |
| FLOAT (REAL), DOUBLE                 | exact: `[-]MpE`, abs = M * 2^(E-52), M 53 bits    |
| FLOAT/DOUBLE zero (+0 and -0)        | `0`                                               |
| DATE                                 | `YYYY-MM-DD`                                      |
| DATETIME(n), TIMESTAMP(n)            | `YYYY-MM-DD HH:MM:SS.ffffff` (UTC session)        |
| TIME(n) (VARCHAR)                    | `[-]HH:MM:SS`, `.ffffff` when n > 0, as loaded    |
| CHAR..TEXT, ENUM, SET, JSON          | `<UTF-8 bytes>:<text>`: `2:ab`, `0:`              |
| the same, values over 1,024 bytes    | `h` + SHA-256 of the UTF-8 text (64 hex digits)   |
| BINARY/VARBINARY/BLOB (<= 512 bytes) | `x` + lowercase hex (BINARY(n) keeps its padding) |
| the same, values <= 32,000 bytes     | SHA-256 of the lowercase hex                      |
| the same, longer values              | SHA-256 of the SHA-256s of 32,000-byte pieces' hex |

Text is the warehouse's: UTF-8, cut at a character boundary to the target VARCHAR's
bytes (TEXT/JSON over 65,535 bytes compare as cut), CHAR without the trailing spaces
MySQL strips; binary values compare as cut to VARBYTE's 1,024,000 bytes. JSON is the
text MySQL returns (MariaDB: the stored text; MySQL 8: its normalized text), as loaded.

A row's text is its fields in column order joined by `,`: integers, decimals, floats,
dates, times and hex never hold a `,`, text is length-prefixed or hashed, so the text of
two different rows always differs (`('a','bc')` is `1:a,2:bc`, `('ab','c')` is `2:ab,1:c`).
Redshift keeps no VARCHAR value over 65,535 bytes, intermediate ones included: long text
and binary fields are hashed, and a row whose text could exceed `GROUP_BYTES` is hashed
in groups of columns (the SHA-256 of each group's text, joined by `,`).

The row hash is `SHA2(row text, 256)`, a function MySQL, MariaDB and Redshift all have
(MD5 too, but MariaDB's MD5 costs several times its SHA2: it alone made the source query
twice the native full read). A range's checksum is `COUNT(*)` and the `SUM` of the
first 15 hex digits of each row hash as an integer. 15 digits (60 bits) because Redshift's
STRTOL must return a signed 64-bit value: 16 digits reach 2^64 - 1 and overflow. The sum
is a DECIMAL(38,0) on Redshift (its SUM of a BIGINT is a BIGINT and would overflow after
8 rows) and exact on MySQL (SUM of integers is a DECIMAL): no overflow below 2^66 rows.
A changed row changes its range's sum unless its 60 bits collide (2^-60).

Ranges are `lower < key <= upper` on the key columns (`keys.key_range` style: the key
written out as OR/AND so MariaDB uses the primary key's index), in key order and not
overlapping. One query classifies each row into its range by a binary search over the
upper bounds (a nested CASE), so the table is read once for any number of ranges.

Limits (stated, not hidden):
- FLOAT/DOUBLE compare bit for bit except the sign of zero (-0 and +0 are both `0`);
  NaN and infinities, which MySQL cannot store, would fail the Redshift query.
- Text keys are compared by UTF-8 bytes on both sides (MySQL through a binary cast, so a
  range query on a text key cannot use the index); ranges must be in that order, which
  is Python's `str` order, not a case-insensitive collation's.
- The source connection must be the extractor's (`source.connect`: UTC), or TIMESTAMPs
  compare shifted. MySQL SQL is %-formatted: run it with its parameters, even none.
- Redshift's 65,535-byte VARCHAR limit on intermediate values is respected by design
  (`GROUP_BYTES`, `PIECE_BYTES`, hashed long values) but the stand-in does not enforce it.
- JSON is proven on MariaDB (text as stored); MySQL 8 returns its normalized text, which
  the extractor loads, so the same expression holds, untested here.

Redshift functions used (Amazon Redshift Database Developer Guide):
- SHA2: https://docs.aws.amazon.com/redshift/latest/dg/SHA2.html
- STRTOL: https://docs.aws.amazon.com/redshift/latest/dg/r_STRTOL.html
- SUBSTRING (VARCHAR and VARBYTE): https://docs.aws.amazon.com/redshift/latest/dg/r_SUBSTRING.html
- TO_HEX (VARBYTE): https://docs.aws.amazon.com/redshift/latest/dg/r_TO_HEX.html
- OCTET_LENGTH: https://docs.aws.amazon.com/redshift/latest/dg/r_OCTET_LENGTH.html
- TO_CHAR: https://docs.aws.amazon.com/redshift/latest/dg/r_TO_CHAR.html with the
  datetime format strings https://docs.aws.amazon.com/redshift/latest/dg/r_FORMAT_strings.html
- CAST: https://docs.aws.amazon.com/redshift/latest/dg/r_CAST_function.html
- COALESCE (NVL): https://docs.aws.amazon.com/redshift/latest/dg/r_NVL_function.html
- || : https://docs.aws.amazon.com/redshift/latest/dg/r_concat_op.html
- SUM: https://docs.aws.amazon.com/redshift/latest/dg/r_SUM.html
- LN, POWER, FLOOR, ABS, LEAST/GREATEST: r_LN.html, r_POWER.html, r_FLOOR.html,
  r_ABS.html, r_GREATEST_LEAST.html under the same address
- CHR: https://docs.aws.amazon.com/redshift/latest/dg/r_CHR.html
The local stand-in (PostgreSQL) lacks STRTOL, SHA2 and TO_HEX(VARBYTE): it creates them as
PostgreSQL functions computing what Redshift documents (`redshift_standin.ensure_functions`).
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from myshift.errors import SchemaError
from myshift.identifiers import (
    quote_mysql,
    quote_mysql_table,
    quote_redshift,
    quote_redshift_table,
)
from myshift.keys import Key, KeyValue
from myshift.mysql_types import REDSHIFT_MAX_VARBYTE, REDSHIFT_MAX_VARCHAR, UTF8_CHARSETS, Family
from myshift.schema import Column, truncate_utf8

NULL_TEXT = "N"
SEPARATOR = ","
INLINE_TEXT_BYTES = 1024  # longer text values are hashed, not inlined
INLINE_BINARY_BYTES = 512  # hex doubles them: 1,025 characters
PIECE_BYTES = 32_000  # hex of one piece (64,000 characters) fits a Redshift VARCHAR
GROUP_BYTES = 60_000  # the longest group text, under Redshift's 65,535-byte VARCHAR
HASH_HEX_DIGITS = 15  # 60 bits: STRTOL's signed 64-bit result never overflows
MAX_REDSHIFT_SQL_BYTES = 100 * 1024  # the Data API's limit on one statement

_DOUBLE_2_52 = 4503599627370496  # 2^52
_DOUBLE_2_53 = 9007199254740992  # 2^53
_VARBYTE = re.compile(r"^VARBYTE\((\d+)\)$")


@dataclass(frozen=True)
class Field:
    """One column's canonical text: the MySQL and Redshift expressions, the longest text."""

    mysql: str
    redshift: str
    max_bytes: int


# --- per-type kinds -------------------------------------------------------------------


_KINDS = {
    Family.INTEGER: "integer",
    Family.BIT: "integer",
    Family.DECIMAL: "decimal",
    Family.FLOAT: "float",
    Family.DATE: "date",
    Family.DATETIME: "datetime",
    Family.TIME: "time",
}


def _kind(col: Column) -> str:
    """The canonical form a column takes (see the module's table)."""
    if col.redshift_type == "BOOLEAN":
        return "boolean"
    if col.family is Family.TEXT:
        return "text" if _text_limit(col) <= INLINE_TEXT_BYTES else "long_text"
    if col.family is Family.BINARY:
        limit = _binary_limit(col)
        if limit <= INLINE_BINARY_BYTES:
            return "binary"
        return "binary_hashed" if limit <= PIECE_BYTES else "binary_pieces"
    return _KINDS[col.family]


def _text_limit(col: Column) -> int:
    """The most UTF-8 bytes the warehouse holds for a text column."""
    return col.max_bytes or REDSHIFT_MAX_VARCHAR


def _binary_limit(col: Column) -> int:
    """The most bytes the warehouse holds for a binary column (its VARBYTE size)."""
    found = _VARBYTE.match(col.redshift_type)
    return int(found.group(1)) if found else REDSHIFT_MAX_VARBYTE


def _pieces(col: Column) -> int:
    return math.ceil(min(_binary_limit(col), REDSHIFT_MAX_VARBYTE) / PIECE_BYTES)


def _piece_digests(col: Column, quoted: str, hex_sha: Callable[[str], str]) -> list[str]:
    """The SHA-256 of the hex of each PIECE_BYTES piece (SUBSTRING counts bytes in binary)."""
    return [
        hex_sha(f"SUBSTRING({quoted}, {1 + i * PIECE_BYTES}, {PIECE_BYTES})")
        for i in range(_pieces(col))
    ]


def _max_text_bytes(col: Column) -> int:
    """The longest canonical text of a column's values (NULL's `N` is shorter)."""
    kind = _kind(col)
    if kind in ("binary_hashed", "binary_pieces"):
        return 64
    if kind in ("text", "long_text"):
        limit = min(_text_limit(col), INLINE_TEXT_BYTES)
        return len(str(limit)) + 1 + limit
    if kind == "binary":
        return 1 + 2 * _binary_limit(col)
    if kind == "decimal":
        digits = re.findall(r"\d+", col.column_type)
        return (int(digits[0]) if digits else 65) + 3  # sign, point, leading zero
    return {"boolean": 1, "integer": 21, "float": 25, "date": 10, "datetime": 26, "time": 20}[kind]


# --- MySQL expressions ------------------------------------------------------------------


def _float_parts(value: str, power: str, double: str) -> tuple[str, str, str]:
    """(exponent, adjustment, mantissa) expressions of `[-]MpE` for a double `value`.

    LN gives floor(log2|x|) to within one (both engines' LN differ in the last bits);
    |x| * 2^(52-e0) then lies in [2^51, 2^54) and one halving or doubling (exact)
    brings it into [2^52, 2^53): scaling by powers of two is exact in IEEE 754. The
    power is split in two so that no intermediate value overflows or underflows,
    subnormals included. `power` is the engine's POW function, `double` the suffix that
    makes a literal a double.
    """
    e0 = f"LEAST(1023, GREATEST(-1074, FLOOR(LN(ABS({value})) / LN(2))))"
    k = f"(52 - {e0})"
    y0 = f"(ABS({value}) * {power}(2, FLOOR({k} / 2)) * {power}(2, {k} - FLOOR({k} / 2)))"
    adjust = (
        f"(CASE WHEN {y0} >= {_DOUBLE_2_53}{double} THEN 1 "
        f"WHEN {y0} < {_DOUBLE_2_52}{double} THEN -1 ELSE 0 END)"
    )
    return e0, adjust, f"{y0} / {power}(2, {adjust})"


def _mysql_float(value: str) -> str:
    """`[-]MpE` of a double, exactly (`_float_parts`)."""
    e0, adjust, mantissa = _float_parts(value, "POW", "e0")
    return (
        f"(CASE WHEN {value} = 0 THEN '0' ELSE CONCAT(IF({value} < 0, '-', ''), "
        f"CAST({mantissa} AS UNSIGNED), 'p', CAST({e0} + {adjust} AS SIGNED)) END)"
    )


def _mysql_utf8(col: Column) -> str:
    """The column's value as its UTF-8 bytes (binary: no collation mixes, no charset)."""
    quoted = quote_mysql(col.source_name)
    # The extractor's own conversion (schema.csv_field_sql): UTF-8 columns as they are.
    utf8 = quoted if col.charset in UTF8_CHARSETS else f"CONVERT({quoted} USING utf8mb4)"
    return f"CAST({utf8} AS BINARY)"


def _mysql_utf8_length(col: Column) -> str:
    """UTF-8 bytes of the value: LENGTH counts the column charset's, UTF-8's for UTF-8."""
    if col.charset in UTF8_CHARSETS:
        return f"LENGTH({quote_mysql(col.source_name)})"
    return f"LENGTH({_mysql_utf8(col)})"


def _mysql_cut_text(col: Column) -> str:
    """UTF-8 bytes cut as `schema.truncate_utf8` cuts them to the target's byte length."""
    limit = _text_limit(col)
    whole = _mysql_utf8(col)
    # At most `limit` characters first: the value never grows past 4 * limit bytes.
    quoted = quote_mysql(col.source_name)
    head_utf8 = (
        f"LEFT({quoted}, {limit})"
        if col.charset in UTF8_CHARSETS
        else f"CONVERT(LEFT({quoted}, {limit}) USING utf8mb4)"
    )
    head = f"CAST({head_utf8} AS BINARY)"

    def byte(position: int) -> str:
        return f"ASCII(SUBSTRING({head}, {position}, 1))"

    # The byte after the limit a continuation byte (0x80-0xBF): the character at the
    # limit is cut, so drop it back to its lead byte (>= 0xC0), at most 3 bytes back.
    cut = (
        f"(CASE WHEN {byte(limit + 1)} NOT BETWEEN 128 AND 191 THEN {limit} "
        f"WHEN {byte(limit)} >= 192 THEN {limit - 1} "
        f"WHEN {byte(limit - 1)} >= 192 THEN {limit - 2} ELSE {limit - 3} END)"
    )
    return f"IF(LENGTH({whole}) <= {limit}, {whole}, LEFT({head}, {cut}))"


def _may_be_cut(col: Column) -> bool:
    """Whether a value can exceed the target's VARCHAR bytes (the extractor cuts it)."""
    return not col.type.fits or _text_limit(col) >= REDSHIFT_MAX_VARCHAR


def _sha(text: str) -> str:
    """SHA-256 as 64 lowercase hex digits: `SHA2(x, 256)` in MySQL and in Redshift alike.

    Not MD5: MariaDB's MD5 costs ~15 ns a byte, several times its SHA2 (measured: the
    MD5 of each row took more server time than formatting the row).
    """
    return f"SHA2({text}, 256)"


def _mysql_hex_sha(binary: str) -> str:
    return _sha(f"LOWER(HEX({binary}))")


def mysql_field(col: Column) -> str:
    """The MySQL expression of a column's canonical text (never NULL)."""
    quoted = quote_mysql(col.source_name)
    kind = _kind(col)
    zerofill = "zerofill" in col.column_type
    if kind == "boolean":
        expr = f"(({quoted} + 0) <> 0)"
    elif kind == "integer":
        # YEAR prints '0000' and ZEROFILL pads; BIT is a binary string: all as numbers.
        expr = f"({quoted} + 0)" if zerofill else col.read_sql()
    elif kind == "decimal":
        expr = f"({quoted} + 0)" if zerofill else quoted
    elif kind == "float":
        expr = _mysql_float(col.read_sql())  # read as a double: FLOAT's float32 exactly
    elif kind == "date":
        # `+ INTERVAL 0 DAY` is NULL for exactly the dates the extractor loads as NULL:
        # zero dates, zero months or days, impossible dates and year 0. A DATE prints
        # as YYYY-MM-DD (DATE_FORMAT would cost ~40% more server CPU, measured).
        expr = f"({quoted} + INTERVAL 0 DAY)"
    elif kind == "datetime":
        # DATETIME(6) prints its six digits; fewer need the format.
        precision = int((re.findall(r"\((\d+)\)", col.column_type) or ["0"])[0])
        shifted = f"{quoted} + INTERVAL 0 SECOND"
        expr = (
            f"({shifted})"
            if precision == 6
            else f"DATE_FORMAT({shifted}, '%%Y-%%m-%%d %%H:%%i:%%s.%%f')"
        )
    elif kind == "time":
        precision = int((re.findall(r"\((\d+)\)", col.column_type) or ["0"])[0])
        # As loaded (schema.format_time): no fraction for TIME(0), six digits otherwise.
        expr = quoted if precision in (0, 6) else f"CONCAT({quoted}, '{'0' * (6 - precision)}')"
    elif kind == "text":
        utf8 = _mysql_utf8(col)  # never cut: VARCHAR(n) of at most 1,024 bytes
        expr = f"CONCAT({_mysql_utf8_length(col)}, ':', {utf8})"
    elif kind == "long_text":
        # Most values are short: inlined, they cost a LENGTH, not a hash of their own.
        utf8, length = _mysql_utf8(col), _mysql_utf8_length(col)
        cut = _mysql_cut_text(col) if _may_be_cut(col) else utf8
        expr = (
            f"IF({length} <= {INLINE_TEXT_BYTES}, CONCAT({length}, ':', {utf8}), "
            f"CONCAT('h', {_sha(cut)}))"
        )
    elif kind == "binary":
        expr = f"CONCAT('x', LOWER(HEX({quoted})))"
    elif kind == "binary_hashed":
        expr = _mysql_hex_sha(quoted)
    else:
        pieces = ", ".join(_piece_digests(col, quoted, _mysql_hex_sha))
        whole = _mysql_hex_sha(quoted)
        expr = f"IF(LENGTH({quoted}) <= {PIECE_BYTES}, {whole}, {_sha(f'CONCAT({pieces})')})"
    # Dates can be NULL in a NOT NULL column (zero dates); CONCAT_WS would drop a NULL.
    if col.source_nullable or kind in ("date", "datetime"):
        return f"IFNULL({expr}, '{NULL_TEXT}')"
    return expr


# --- Redshift expressions -----------------------------------------------------------------


def _redshift_float(value: str) -> str:
    """`_mysql_float` in Redshift SQL (LN, POWER, FLOOR, ABS, LEAST/GREATEST, CAST)."""
    e0, adjust, mantissa = _float_parts(value, "POWER", "")
    # A DOUBLE PRECISION integer below 2^53 casts to BIGINT exactly.
    sign = f"(CASE WHEN {value} < 0 THEN '-' ELSE '' END)"
    return (
        f"(CASE WHEN {value} = 0 THEN '0' ELSE {sign} || "
        f"CAST(CAST({mantissa} AS BIGINT) AS VARCHAR) || 'p' || "
        f"CAST(CAST({e0} + {adjust} AS BIGINT) AS VARCHAR) END)"
    )


def _redshift_hex_sha(binary: str) -> str:
    # TO_HEX of a VARBYTE gives lowercase hex (r_TO_HEX.html); SHA2 takes a VARCHAR.
    return _sha(f"TO_HEX({binary})")


def redshift_field(col: Column) -> str:
    """The Redshift expression of a column's canonical text (never NULL)."""
    quoted = quote_redshift(col.target_name)
    kind = _kind(col)
    if kind == "boolean":
        expr = f"(CASE WHEN {quoted} THEN '1' WHEN NOT {quoted} THEN '0' END)"
    elif kind in ("integer", "decimal") and col.redshift_type.startswith("VARCHAR"):
        expr = quoted  # DECIMAL(p > 38): the exact text, as loaded
    elif kind in ("integer", "decimal"):
        # CAST of a DECIMAL keeps its scale: 12.3000, -0.5000 (r_CAST_function.html).
        expr = f"CAST({quoted} AS VARCHAR)"
    elif kind == "float":
        expr = _redshift_float(f"CAST({quoted} AS DOUBLE PRECISION)")  # REAL widens exactly
    elif kind == "date":
        expr = f"TO_CHAR({quoted}, 'YYYY-MM-DD')"  # r_FORMAT_strings.html
    elif kind == "datetime":
        expr = f"TO_CHAR({quoted}, 'YYYY-MM-DD HH24:MI:SS.US')"  # US: microseconds
    elif kind == "time":
        expr = quoted
    elif kind == "text":
        # OCTET_LENGTH counts a VARCHAR's bytes, trailing spaces included.
        expr = f"CAST(OCTET_LENGTH({quoted}) AS VARCHAR) || ':' || {quoted}"
    elif kind == "long_text":
        length = f"OCTET_LENGTH({quoted})"
        expr = (
            f"(CASE WHEN {length} <= {INLINE_TEXT_BYTES} THEN CAST({length} AS VARCHAR) "
            f"|| ':' || {quoted} ELSE 'h' || {_sha(quoted)} END)"
        )
    elif kind == "binary":
        expr = f"'x' || TO_HEX({quoted})"
    elif kind == "binary_hashed":
        expr = _redshift_hex_sha(quoted)
    else:
        pieces = " || ".join(_piece_digests(col, quoted, _redshift_hex_sha))
        whole = _redshift_hex_sha(quoted)
        short = f"OCTET_LENGTH({quoted}) <= {PIECE_BYTES}"
        expr = f"(CASE WHEN {short} THEN {whole} ELSE {_sha(pieces)} END)"
    if col.nullable:
        return f"COALESCE({expr}, '{NULL_TEXT}')"
    return expr


def field(col: Column) -> Field:
    """Both expressions of a column's canonical text and its longest text."""
    return Field(mysql_field(col), redshift_field(col), _max_text_bytes(col))


# --- rows ---------------------------------------------------------------------------------


def column_groups(columns: Sequence[Column]) -> list[list[Column]]:
    """Columns in order, grouped so that no group's text exceeds GROUP_BYTES."""
    groups: list[list[Column]] = [[]]
    size = 0
    for col in columns:
        length = _max_text_bytes(col) + len(SEPARATOR)
        if groups[-1] and size + length > GROUP_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(col)
        size += length
    return groups


def _mysql_join(parts: list[str]) -> str:
    return f"CONCAT_WS('{SEPARATOR}', " + ", ".join(parts) + ")"


def _redshift_join(parts: list[str]) -> str:
    return f" || '{SEPARATOR}' || ".join(f"({p})" for p in parts)


def mysql_row_text(columns: Sequence[Column]) -> str:
    """The MySQL expression of a row's text (each group's SHA-256 if there are several)."""
    groups = column_groups(columns)
    if len(groups) == 1:
        return _mysql_join([mysql_field(c) for c in groups[0]])
    return _mysql_join([_sha(_mysql_join([mysql_field(c) for c in g])) for g in groups])


def redshift_row_text(columns: Sequence[Column]) -> str:
    """The Redshift expression of a row's text."""
    groups = column_groups(columns)
    if len(groups) == 1:
        return _redshift_join([redshift_field(c) for c in groups[0]])
    return _redshift_join([_sha(_redshift_join([redshift_field(c) for c in g])) for g in groups])


def mysql_row_hash(columns: Sequence[Column]) -> str:
    """SHA-256 of the row text (64 lowercase hex digits)."""
    return _sha(mysql_row_text(columns))


def redshift_row_hash(columns: Sequence[Column]) -> str:
    """SHA-256 of the row text (64 lowercase hex digits)."""
    return _sha(redshift_row_text(columns))


def _mysql_row_number(columns: Sequence[Column]) -> str:
    # CONV gives a string: cast it, or SUM would add doubles.
    digits = f"LEFT({mysql_row_hash(columns)}, {HASH_HEX_DIGITS})"
    return f"CAST(CONV({digits}, 16, 10) AS UNSIGNED)"


def _redshift_row_number(columns: Sequence[Column]) -> str:
    # SUM of a BIGINT is a BIGINT in Redshift (r_SUM.html): sum DECIMAL(38,0) instead.
    digits = f"SUBSTRING({redshift_row_hash(columns)}, 1, {HASH_HEX_DIGITS})"
    return f"CAST(STRTOL({digits}, 16) AS DECIMAL(38,0))"


# --- the Python reference -------------------------------------------------------------------


def _float_text(value: float) -> str:
    if value == 0:
        return "0"
    mantissa, exponent = math.frexp(abs(value))  # |x| = m * 2^e, 0.5 <= m < 1
    return f"{'-' if value < 0 else ''}{int(mantissa * 2**53)}p{exponent - 1}"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hex_sha(data: bytes) -> str:
    return _digest(data.hex().encode())


def canonical_text(col: Column, value: Any) -> str:
    """The canonical text of a warehouse value (as psycopg or the Parquet file gives it)."""
    if value is None:
        return NULL_TEXT
    kind = _kind(col)
    if kind == "boolean":
        return "1" if value else "0"
    if kind in ("integer", "decimal"):
        if isinstance(value, str):
            return value
        return format(Decimal(value), "f") if kind == "decimal" else str(int(value))
    if kind == "float":
        number = float(value)
        if col.redshift_type == "REAL":
            # A client may hand a REAL over as its shortest decimal text read as a double:
            # the nearest float32 is the stored value.
            number = struct.unpack("f", struct.pack("f", number))[0]
        return _float_text(number)
    if kind == "date":
        return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
    if kind == "datetime":
        assert isinstance(value, datetime)
        return (
            f"{value.year:04d}-{value.month:02d}-{value.day:02d} {value.hour:02d}:"
            f"{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}"
        )
    if kind == "time":
        return str(value)
    if kind in ("text", "long_text"):
        encoded = truncate_utf8(str(value), _text_limit(col)).encode("utf-8")
        if len(encoded) > INLINE_TEXT_BYTES:
            return "h" + _digest(encoded)
        return f"{len(encoded)}:{encoded.decode('utf-8')}"
    data = bytes(value)[:REDSHIFT_MAX_VARBYTE]
    if kind == "binary":
        return "x" + data.hex()
    if kind == "binary_hashed" or len(data) <= PIECE_BYTES:
        return _hex_sha(data)
    pieces = "".join(
        _hex_sha(data[i * PIECE_BYTES : (i + 1) * PIECE_BYTES]) for i in range(_pieces(col))
    )
    return _digest(pieces.encode())


def row_text(columns: Sequence[Column], values: Sequence[Any]) -> str:
    """The canonical text of a row of warehouse values."""
    texts = {c.target_name: canonical_text(c, v) for c, v in zip(columns, values, strict=True)}
    groups = column_groups(columns)
    if len(groups) == 1:
        return SEPARATOR.join(texts[c.target_name] for c in groups[0])
    return SEPARATOR.join(
        _digest(SEPARATOR.join(texts[c.target_name] for c in g).encode()) for g in groups
    )


def row_hash(columns: Sequence[Column], values: Sequence[Any]) -> str:
    """SHA-256 of the row's canonical text."""
    return _digest(row_text(columns, values).encode())


def row_number(digest: str) -> int:
    """The integer a row hash adds to its range's sum."""
    return int(digest[:HASH_HEX_DIGITS], 16)


# --- key ranges -------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyRange:
    """`lower < key <= upper`; None is open. Bounds may be a prefix of the key."""

    lower: Key | None
    upper: Key | None


@dataclass(frozen=True)
class RangeChecksum:
    """What one engine computed for one range."""

    index: int
    rows: int
    total: int


def parse_range_checksums(rows: Sequence[Sequence[Any]]) -> dict[int, RangeChecksum]:
    """(index, count, sum) rows of either engine (ints, Decimals or strings) by index.

    A range holding no row has no result row: it is absent here (count 0, sum 0).
    """
    out: dict[int, RangeChecksum] = {}
    for index, count, total in rows:
        out[int(index)] = RangeChecksum(int(index), int(count), int(Decimal(str(total or 0))))
    return out


class _Dialect:
    """How one engine writes a key column and a key value in a comparison."""

    def __init__(self, columns: Sequence[Column], key_columns: Sequence[str]) -> None:
        by_source = {c.source_name: c for c in columns}
        missing = [k for k in key_columns if k not in by_source]
        if missing or not key_columns:
            raise SchemaError(f"key columns {missing or list(key_columns)} are not columns")
        self.keys = [by_source[k] for k in key_columns]
        for col in self.keys:
            if _kind(col) not in (
                "integer",
                "decimal",
                "date",
                "datetime",
                "text",
            ):
                raise SchemaError(f"key column {col.source_name!r} ({col.column_type}) unsupported")
        self.params: list[KeyValue] = []

    def column(self, col: Column) -> str:
        raise NotImplementedError

    def value(self, col: Column, value: KeyValue) -> str:
        raise NotImplementedError


class _MySQL(_Dialect):
    def column(self, col: Column) -> str:
        if col.type.key_as_bytes:
            # Compared by UTF-8 bytes, as Redshift compares: a case-insensitive
            # collation would put rows into other ranges than the warehouse does.
            return _mysql_utf8(col)
        return quote_mysql(col.source_name)

    def value(self, col: Column, value: KeyValue) -> str:
        self.params.append(value)
        return "CAST(%s AS BINARY)" if col.type.key_as_bytes else "%s"


def _redshift_literal(value: KeyValue) -> str:
    """A key value as a Redshift literal (backslashes through CHR: never an escape)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise SchemaError(f"key value {value!r} cannot be a Redshift literal")
    if isinstance(value, int):
        return str(value)
    if "\x00" in value:
        raise SchemaError("NUL byte in a key value")
    parts = ["'" + part.replace("'", "''") + "'" for part in value.split("\\")]
    return " || CHR(92) || ".join(parts) if len(parts) > 1 else parts[0]


class _Redshift(_Dialect):
    def column(self, col: Column) -> str:
        return quote_redshift(col.target_name)

    def value(self, col: Column, value: KeyValue) -> str:
        return _redshift_literal(value)


def _compare(dialect: _Dialect, bound: Key, op: str) -> str:
    """`key <op> bound` lexicographically on the bound's columns, as OR/AND (keys._compare)."""
    if len(bound) > len(dialect.keys) or not bound:
        raise SchemaError(f"key bound {bound!r} has {len(bound)} values")
    if any(v is None for v in bound):
        raise SchemaError("a key bound holds NULL")
    strict = ">" if op in (">", ">=") else "<"
    disjuncts = []
    for i, col in enumerate(dialect.keys[: len(bound)]):
        terms = [
            f"{dialect.column(c)} = {dialect.value(c, v)}"
            for c, v in zip(dialect.keys[:i], bound[:i], strict=True)
        ]
        last_op = op if i == len(bound) - 1 else strict
        terms.append(f"{dialect.column(col)} {last_op} {dialect.value(col, bound[i])}")
        disjuncts.append("(" + " AND ".join(terms) + ")")
    return "(" + " OR ".join(disjuncts) + ")"


def _within(dialect: _Dialect, lower: Key | None, upper: Key | None) -> str:
    parts = []
    if lower is not None:
        parts.append(_compare(dialect, lower, ">"))
    if upper is not None:
        parts.append(_compare(dialect, upper, "<="))
    return " AND ".join(parts) or "1 = 1"


def _range_index(dialect: _Dialect, ranges: Sequence[KeyRange], lo: int, hi: int) -> str:
    """The index of a row's range among ranges[lo..hi]: a binary search on the uppers."""
    if lo == hi:
        lower = ranges[lo].lower
        # Contiguous ranges need no lower test: the search already passed the previous upper.
        contiguous = lo > 0 and lower is not None and lower == ranges[lo - 1].upper
        if lower is None or contiguous:
            return str(lo)
        return f"(CASE WHEN {_compare(dialect, lower, '>')} THEN {lo} END)"
    mid = (lo + hi) // 2
    upper = ranges[mid].upper
    if upper is None:
        raise SchemaError("only the last range may be open above")
    test = _compare(dialect, upper, "<=")
    left = _range_index(dialect, ranges, lo, mid)
    right = _range_index(dialect, ranges, mid + 1, hi)
    return f"(CASE WHEN {test} THEN {left} ELSE {right} END)"


def _check_ranges(ranges: Sequence[KeyRange]) -> None:
    if not ranges:
        raise SchemaError("no key range")


def source_range_checksums_sql(
    database: str,
    table: str,
    columns: Sequence[Column],
    key_columns: Sequence[str],
    ranges: Sequence[KeyRange],
) -> tuple[str, list[KeyValue]]:
    """MySQL: `(range index, rows, sum)` of every non-empty range, one pass over the rows.

    `ranges` are in key order, not overlapping. The connection must be set up as the
    extractor's (`source.connect`: UTC, so TIMESTAMPs read as they were loaded).
    """
    _check_ranges(ranges)
    dialect = _MySQL(columns, key_columns)
    index = _range_index(dialect, ranges, 0, len(ranges) - 1)
    number = _mysql_row_number(columns)
    where = _within(dialect, ranges[0].lower, ranges[-1].upper)
    sql = (
        "SELECT r, COUNT(*), SUM(h) FROM ("  # noqa: S608 (identifiers quoted, values bound)
        f"SELECT {index} AS r, {number} AS h FROM {quote_mysql_table(database, table)} "
        f"WHERE {where}) AS ranged WHERE r IS NOT NULL GROUP BY r ORDER BY r"
    )
    return sql, dialect.params


def target_range_checksums_sql(
    schema: str,
    table: str,
    columns: Sequence[Column],
    key_columns: Sequence[str],
    ranges: Sequence[KeyRange],
    where: str | None = None,
) -> str:
    """Redshift: the same `(range index, rows, sum)` for the warehouse table, literals inlined.

    `key_columns` are source names (as in the pipeline); `table` is the target name.
    One statement for the batch; keep it under MAX_REDSHIFT_SQL_BYTES (`range_batches`).
    `where`: a further predicate on the warehouse rows (built by the caller, quoted).
    """
    _check_ranges(ranges)
    dialect = _Redshift(columns, key_columns)
    index = _range_index(dialect, ranges, 0, len(ranges) - 1)
    number = _redshift_row_number(columns)
    where = _within(dialect, ranges[0].lower, ranges[-1].upper) + (
        f" AND ({where})" if where else ""
    )
    return (
        "SELECT r, COUNT(*), SUM(h) FROM ("  # noqa: S608 (identifiers quoted, literals escaped)
        f"SELECT {index} AS r, {number} AS h FROM {quote_redshift_table(schema, table)} "
        f"WHERE {where}) AS ranged WHERE r IS NOT NULL GROUP BY r ORDER BY r"
    )


def range_batches(
    schema: str,
    table: str,
    columns: Sequence[Column],
    key_columns: Sequence[str],
    ranges: Sequence[KeyRange],
    max_bytes: int = MAX_REDSHIFT_SQL_BYTES,
    where: str | None = None,
) -> list[tuple[int, str]]:
    """`(first range index, SQL)` per batch: as few statements as fit the Data API's limit.

    A batch's result indexes count from its first range: add the offset.
    """
    batches: list[tuple[int, str]] = []
    start = 0
    while start < len(ranges):
        size = len(ranges) - start
        while True:
            sql = target_range_checksums_sql(
                schema, table, columns, key_columns, ranges[start : start + size], where
            )
            if len(sql.encode("utf-8")) <= max_bytes:
                break
            if size == 1:
                raise SchemaError(f"one range's checksum SQL is over {max_bytes} bytes")
            size = max(1, size // 2)
        batches.append((start, sql))
        start += size
    return batches


def source_row_checksums_sql(
    database: str,
    table: str,
    columns: Sequence[Column],
    key_columns: Sequence[str],
    key_range: KeyRange,
) -> tuple[str, list[KeyValue]]:
    """MySQL: `(key columns..., key text, row hash)` of every row of one (small) range.

    The key text is the canonical text of the key columns, equal on both sides: rows
    match by it; the row hashes of matching rows differ where the content does.
    """
    dialect = _MySQL(columns, key_columns)
    where = _within(dialect, key_range.lower, key_range.upper)
    keys_sql = ", ".join(quote_mysql(c.source_name) for c in dialect.keys)
    order = ", ".join(dialect.column(c) for c in dialect.keys)
    sql = (
        f"SELECT {keys_sql}, {_mysql_join([mysql_field(c) for c in dialect.keys])} "  # noqa: S608
        f"AS key_text, {mysql_row_hash(columns)} AS row_hash "
        f"FROM {quote_mysql_table(database, table)} WHERE {where} ORDER BY {order}"
    )
    return sql, dialect.params


def target_row_checksums_sql(
    schema: str,
    table: str,
    columns: Sequence[Column],
    key_columns: Sequence[str],
    key_range: KeyRange,
) -> str:
    """Redshift: `(key columns..., key text, row hash)` of every row of one range."""
    dialect = _Redshift(columns, key_columns)
    where = _within(dialect, key_range.lower, key_range.upper)
    keys_sql = ", ".join(quote_redshift(c.target_name) for c in dialect.keys)
    # By position: the key text's column may carry a key column's name too.
    order = ", ".join(str(i + 1) for i in range(len(dialect.keys)))
    return (
        f"SELECT {keys_sql}, {_redshift_join([redshift_field(c) for c in dialect.keys])} "  # noqa: S608
        f"AS key_text, {redshift_row_hash(columns)} AS row_hash "
        f"FROM {quote_redshift_table(schema, table)} WHERE {where} ORDER BY {order}"
    )


# --- verification: rows due (up to a watermark) and the rest ---------------------------------


def source_due_range_checksums_sql(
    database: str,
    table: str,
    columns: Sequence[Column],
    key_columns: Sequence[str],
    ranges: Sequence[KeyRange],
    due: tuple[str, Sequence[KeyValue]],
) -> tuple[str, list[KeyValue]]:
    """MySQL: `(range index, rows due, sum of their hashes, rows not due)` per range.

    `due` is a MySQL predicate with its parameters (`keys.key_range` up to a watermark):
    the rows the warehouse must hold as they are. The others (changed or added after
    the watermark) are only counted. One pass over the ranges' rows, as
    `source_range_checksums_sql`.
    """
    _check_ranges(ranges)
    dialect = _MySQL(columns, key_columns)
    index = _range_index(dialect, ranges, 0, len(ranges) - 1)
    index_params, dialect.params = dialect.params, []
    number = _mysql_row_number(columns)
    where = _within(dialect, ranges[0].lower, ranges[-1].upper)
    due_sql, due_params = due
    sql = (
        "SELECT r, SUM(d), SUM(IF(d = 1, h, 0)), SUM(1 - d) FROM ("  # noqa: S608 (quoted, bound)
        f"SELECT {index} AS r, {number} AS h, IF(IFNULL({due_sql}, 0), 1, 0) AS d "
        f"FROM {quote_mysql_table(database, table)} WHERE {where}) AS ranged "
        "WHERE r IS NOT NULL GROUP BY r ORDER BY r"
    )
    return sql, [*index_params, *due_params, *dialect.params]


def source_due_row_checksums_sql(
    database: str,
    table: str,
    columns: Sequence[Column],
    key_columns: Sequence[str],
    key_range: KeyRange,
    due: tuple[str, Sequence[KeyValue]],
) -> tuple[str, list[KeyValue]]:
    """MySQL: `(key columns..., key text, row hash, due)` of every row of one range."""
    dialect = _MySQL(columns, key_columns)
    where = _within(dialect, key_range.lower, key_range.upper)
    keys_sql = ", ".join(quote_mysql(c.source_name) for c in dialect.keys)
    due_sql, due_params = due
    sql = (
        f"SELECT {keys_sql}, {_mysql_join([mysql_field(c) for c in dialect.keys])} "  # noqa: S608
        f"AS key_text, {mysql_row_hash(columns)} AS row_hash, IF(IFNULL({due_sql}, 0), 1, 0) "
        f"FROM {quote_mysql_table(database, table)} WHERE {where}"
    )
    return sql, [*due_params, *dialect.params]


def target_range_predicate(
    columns: Sequence[Column], key_columns: Sequence[str], key_range: KeyRange
) -> str:
    """Redshift: `lower < key <= upper` on the warehouse table's key columns."""
    return _within(_Redshift(columns, key_columns), key_range.lower, key_range.upper)


def target_rows_select(
    schema: str, table: str, columns: Sequence[Column], key_columns: Sequence[str]
) -> str:
    """Redshift: `SELECT key columns..., key text, row hash FROM table`, to add a WHERE to."""
    dialect = _Redshift(columns, key_columns)
    keys_sql = ", ".join(quote_redshift(c.target_name) for c in dialect.keys)
    return (
        f"SELECT {keys_sql}, {_redshift_join([redshift_field(c) for c in dialect.keys])} "  # noqa: S608
        f"AS key_text, {redshift_row_hash(columns)} AS row_hash "
        f"FROM {quote_redshift_table(schema, table)}"
    )


def target_keys_predicate(
    columns: Sequence[Column], key_columns: Sequence[str], keys: Sequence[Key]
) -> str:
    """Redshift: the row's key is one of `keys` (literals escaped as in every range)."""
    dialect = _Redshift(columns, key_columns)
    if not keys:
        raise SchemaError("no key to match")
    if len(dialect.keys) == 1:
        col = dialect.keys[0]
        values = ", ".join(dialect.value(col, key[0]) for key in keys)
        return f"{dialect.column(col)} IN ({values})"
    return (
        "("
        + " OR ".join(
            "("
            + " AND ".join(
                f"{dialect.column(c)} = {dialect.value(c, v)}"
                for c, v in zip(dialect.keys, key, strict=True)
            )
            + ")"
            for key in keys
        )
        + ")"
    )


def differing_keys(
    source: Sequence[Sequence[Any]], target: Sequence[Sequence[Any]]
) -> dict[str, list[str]]:
    """Key texts of rows `missing` in the target, `extra` in it, or `differing`.

    Takes the rows of `source_row_checksums_sql` and `target_row_checksums_sql` (their
    last two values: key text, row hash). A key text twice in the target is `duplicated`.
    """
    wanted = {str(row[-2]): str(row[-1]) for row in source}
    held: dict[str, str] = {}
    duplicated: list[str] = []
    for row in target:
        key = str(row[-2])
        if key in held:
            duplicated.append(key)
        held[key] = str(row[-1])
    return {
        "missing": sorted(k for k in wanted if k not in held),
        "extra": sorted(k for k in held if k not in wanted),
        "differing": sorted(k for k in wanted if k in held and held[k] != wanted[k]),
        "duplicated": sorted(set(duplicated)),
    }


# Public names the reconcile workflow builds on.
__all__: list[str] = [
    "Field",
    "KeyRange",
    "RangeChecksum",
    "canonical_text",
    "column_groups",
    "differing_keys",
    "field",
    "mysql_field",
    "mysql_row_hash",
    "parse_range_checksums",
    "range_batches",
    "redshift_field",
    "redshift_row_hash",
    "row_hash",
    "row_number",
    "row_text",
    "source_due_range_checksums_sql",
    "source_due_row_checksums_sql",
    "source_range_checksums_sql",
    "source_row_checksums_sql",
    "target_keys_predicate",
    "target_range_checksums_sql",
    "target_range_predicate",
    "target_row_checksums_sql",
    "target_rows_select",
]
