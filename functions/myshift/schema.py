"""The one MySQL -> Arrow (Parquet) -> Redshift type mapping, and the row conversion.

`information_schema.COLUMNS` rows become `Column`s; from those come the Arrow schema the
extractor writes, the Redshift column DDL the loader creates, the MySQL SELECT list, and
the conversion of pymysql rows into an Arrow record batch. Redshift COPY from Parquet maps
columns by position and checks physical types strictly, so nothing else decides a type.

Redshift counts VARCHAR lengths in UTF-8 *bytes*. The byte length of a character column
is its length in characters times the most UTF-8 bytes one character of its charset can
take (not MySQL's own bytes per character: a latin1 'é' is one byte in MySQL and two in
UTF-8, and latin1's '€' takes three).
"""

from __future__ import annotations

import binascii
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from myshift.errors import IdentifierError, SchemaError
from myshift.identifiers import REDSHIFT_MAX_IDENTIFIER_BYTES, quote_mysql, quote_redshift
from myshift.mysql_types import (
    MYSQL_TYPES,
    REDSHIFT_MAX_VARBYTE,
    REDSHIFT_MAX_VARCHAR,
    UTF8_CHARSETS,
    Declared,
    Family,
    MySQLType,
    Target,
    declared_number,
    mysql_type,
)

COLUMNS_QUERY = (
    "SELECT COLUMN_NAME AS COLUMN_NAME, DATA_TYPE AS DATA_TYPE, COLUMN_TYPE AS COLUMN_TYPE, "
    "IS_NULLABLE AS IS_NULLABLE, CHARACTER_MAXIMUM_LENGTH AS CHARACTER_MAXIMUM_LENGTH, "
    "CHARACTER_OCTET_LENGTH AS CHARACTER_OCTET_LENGTH, NUMERIC_PRECISION AS NUMERIC_PRECISION, "
    "NUMERIC_SCALE AS NUMERIC_SCALE, DATETIME_PRECISION AS DATETIME_PRECISION, "
    "CHARACTER_SET_NAME AS CHARACTER_SET_NAME, COLUMN_KEY AS COLUMN_KEY, "
    "ORDINAL_POSITION AS ORDINAL_POSITION "
    "FROM information_schema.COLUMNS "
    "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
    "ORDER BY ORDINAL_POSITION"
)

# Redshift's (and PostgreSQL's) system column names: quoting does not make them usable.
SYSTEM_COLUMN_NAMES = frozenset(
    {"oid", "tableoid", "xmin", "xmax", "cmin", "cmax", "ctid", "deletexid", "insertxid"}
)


@dataclass(frozen=True)
class Column:
    """One source column and everything derived from its type.

    `nullable` is the target's nullability: DATE/DATETIME/TIMESTAMP columns are always
    nullable because a zero date is loaded as NULL, even from a NOT NULL source column.
    `max_bytes` is the VARCHAR byte length of string targets (None for the others).
    `charset` and `source_nullable` are the source column's, for the query that reads it.
    """

    source_name: str
    target_name: str
    data_type: str
    column_type: str
    nullable: bool
    arrow_type: pa.DataType
    redshift_type: str
    max_bytes: int | None
    charset: str | None = None
    source_nullable: bool = True

    @property
    def type(self) -> MySQLType:
        """The column's row in the type table."""
        return MYSQL_TYPES[self.data_type]

    @property
    def family(self) -> Family:
        return self.type.family

    def read_sql(self) -> str:
        """The SQL the column's value is read through (the type table's `read`)."""
        return self.type.read.format(quote_mysql(self.source_name))


@dataclass
class ConversionReport:
    """What `to_record_batch` changed, by target column name (never silent)."""

    zero_dates_nulled: dict[str, int] = field(default_factory=dict)
    # TEXT/JSON (and any string) values cut to max_bytes at a UTF-8 character boundary,
    # and binary values cut to Redshift's VARBYTE maximum.
    values_truncated: dict[str, int] = field(default_factory=dict)

    def merge(self, other: ConversionReport) -> None:
        """Add `other`'s counts to this report."""
        for mine, theirs in (
            (self.zero_dates_nulled, other.zero_dates_nulled),
            (self.values_truncated, other.values_truncated),
        ):
            for name, count in theirs.items():
                mine[name] = mine.get(name, 0) + count

    def as_dict(self) -> dict[str, dict[str, int]]:
        """A JSON-ready copy."""
        return {
            "zero_dates_nulled": dict(self.zero_dates_nulled),
            "values_truncated": dict(self.values_truncated),
        }


# --- names ----------------------------------------------------------------------------


def sanitize_column_name(name: str) -> str:
    """The Redshift name of a MySQL column: `[a-z0-9_]`, no leading digit, <= 127 bytes.

    Reserved words are kept (every identifier is quoted); system column names such as
    `xmin` or `oid` get the `col_` prefix because quoting cannot make them usable.
    """
    # Non-ASCII becomes '_' before lower-casing: some (the Kelvin sign) lower to ASCII.
    out = "".join(ch.lower() if ch.isascii() else "_" for ch in name)
    out = re.sub(r"[^a-z0-9_]", "_", out)
    if not out or out[0].isdigit() or out in SYSTEM_COLUMN_NAMES:
        out = "col_" + out
    if len(out) > REDSHIFT_MAX_IDENTIFIER_BYTES:  # ASCII only: characters == bytes
        digest = hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        out = out[: REDSHIFT_MAX_IDENTIFIER_BYTES - 9] + "_" + digest
    return out


def target_name_map(
    source_names: list[str], existing: dict[str, str] | None = None
) -> dict[str, str]:
    """Source -> target names; names in `existing` are kept so a name never changes.

    Targets of `existing` sources that are gone from `source_names` stay reserved (the
    Redshift column is still there). Two sources on one target raise IdentifierError.
    """
    existing = existing or {}
    owners: dict[str, str] = {}  # target -> source

    def claim(source: str, target: str) -> None:
        other = owners.setdefault(target, source)
        if other != source:
            raise IdentifierError(
                f"columns {other!r} and {source!r} both map to Redshift column {target!r}"
            )

    for source, target in existing.items():
        claim(source, target)
    result: dict[str, str] = {}
    for source in source_names:
        kept = existing.get(source)
        if kept is None:
            kept = sanitize_column_name(source)
            claim(source, kept)
        result[source] = kept
    return result


# --- types ----------------------------------------------------------------------------


def _text(value: Any) -> str:
    """information_schema values may come back as bytes (MySQL 8 with some collations)."""
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8")
    return "" if value is None else str(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _lower_type(column_type: str) -> str:
    """COLUMN_TYPE in lower case, leaving quoted ENUM/SET members as they are."""
    parts = re.split(r"('(?:[^']|'')*')", column_type)
    return "".join(p if p.startswith("'") else p.lower() for p in parts)


def _target(row: dict[str, Any], data_type: str, column_type: str, tinyint1: bool) -> Target:
    """What one column becomes, from its row in the type table; SchemaError if unmapped."""
    row_type = mysql_type(data_type)
    if row_type is None:
        name = _text(row.get("COLUMN_NAME"))
        raise SchemaError(f"column {name!r}: unsupported type {column_type!r}")
    return row_type.target(
        Declared(
            data_type=data_type,
            column_type=column_type,
            charset=_text(row.get("CHARACTER_SET_NAME")) or None,
            char_length=_int(row.get("CHARACTER_MAXIMUM_LENGTH")),
            octet_length=_int(row.get("CHARACTER_OCTET_LENGTH")),
            precision=_int(row.get("NUMERIC_PRECISION")),
            scale=_int(row.get("NUMERIC_SCALE")),
            tinyint1_as_boolean=tinyint1,
        )
    )


def columns_from_information_schema(
    rows: list[dict[str, Any]],
    name_map: dict[str, str] | None = None,
    *,
    tinyint1_as_boolean: bool = False,
) -> list[Column]:
    """Columns from `COLUMNS_QUERY` rows (in ordinal order).

    `name_map` is the kept source -> target map; columns it lacks get sanitized names.
    """
    rows = [{str(k).upper(): v for k, v in row.items()} for row in rows]
    names = [_text(row["COLUMN_NAME"]) for row in rows]
    targets = target_name_map(names, name_map)
    columns: list[Column] = []
    for name, row in zip(names, rows, strict=True):
        data_type = _text(row["DATA_TYPE"]).lower()
        column_type = _lower_type(_text(row.get("COLUMN_TYPE")) or data_type)
        target = _target(row, data_type, column_type, tinyint1_as_boolean)
        source_nullable = _text(row.get("IS_NULLABLE")).upper() != "NO"
        columns.append(
            Column(
                source_name=name,
                target_name=targets[name],
                data_type=data_type,
                column_type=column_type,
                nullable=source_nullable or MYSQL_TYPES[data_type].family.is_date,
                arrow_type=target.arrow,
                redshift_type=target.redshift,
                max_bytes=target.max_bytes,
                charset=(_text(row.get("CHARACTER_SET_NAME")) or "").lower() or None,
                source_nullable=source_nullable,
            )
        )
    return columns


def arrow_schema(columns: list[Column]) -> pa.Schema:
    """The extracted rows' schema: fields named by target name, in source order."""
    return pa.schema([pa.field(c.target_name, c.arrow_type, nullable=c.nullable) for c in columns])


# What the Parquet files are, as conservative as Redshift's own UNLOAD writes them
# (Redshift documents no codec or type matrix for COPY from Parquet): SNAPPY pages, and
# timestamps as UTC-adjusted INT64 microseconds, which pyarrow writes with the legacy
# converted type TIMESTAMP_MICROS besides the logical type (a timestamp with only a
# logical type is reported to load wrong). The values are the source's UTC wall time
# (the session runs in UTC), so the UTC instant is the same number. `myshift doctor`
# COPYs such a file with every type in the user's own account.
PARQUET_COMPRESSION = "snappy"


def file_schema(columns: list[Column]) -> pa.Schema:
    """The Parquet files' schema: `arrow_schema` with timestamps marked UTC-adjusted."""
    fields = []
    for written in arrow_schema(columns):
        if pa.types.is_timestamp(written.type) and written.type.tz is None:
            written = written.with_type(pa.timestamp(written.type.unit, tz="UTC"))
        fields.append(written)
    return pa.schema(fields)


def redshift_columns_ddl(columns: list[Column]) -> str:
    """`"id" BIGINT NOT NULL, "amount" DECIMAL(15,4), ...` for CREATE TABLE."""
    return ", ".join(
        f"{quote_redshift(c.target_name)} {c.redshift_type}{'' if c.nullable else ' NOT NULL'}"
        for c in columns
    )


def select_list(columns: list[Column]) -> str:
    """The MySQL SELECT list, in column order, each column read as the type table says."""
    parts = []
    for c in columns:
        read = c.read_sql()
        quoted = quote_mysql(c.source_name)
        parts.append(quoted if read == quoted else f"{read} AS {quoted}")
    return ", ".join(parts)


# --- rows -----------------------------------------------------------------------------


def format_time(value: timedelta, precision: int = 0) -> str:
    """MySQL TIME text `[-]HH:MM:SS[.ffffff]`; hours may exceed 24 (up to 838)."""
    micros = (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if micros < 0 else ""
    seconds, fraction = divmod(abs(micros), 1_000_000)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    text = f"{sign}{hours:02d}:{minute:02d}:{second:02d}"
    if precision > 0 or fraction:
        text += f".{fraction:06d}"
    return text


def truncate_utf8(value: str, max_bytes: int) -> str:
    """`value` cut to at most `max_bytes` UTF-8 bytes, never inside a character."""
    encoded = value.encode("utf-8")
    if len(encoded) <= max_bytes:
        return value
    end = max_bytes
    while end > 0 and (encoded[end] & 0xC0) == 0x80:  # a continuation byte: back off
        end -= 1
    return encoded[:end].decode("utf-8")


def _bit_int(value: Any) -> int | None:
    """pymysql gives BIT as big-endian bytes (an int if the column was cast)."""
    if value is None or isinstance(value, int):
        return value
    return int.from_bytes(value, "big")


def _convert_bit(col: Column, values: Sequence[Any], report: ConversionReport) -> pa.Array:
    ints = [_bit_int(v) for v in values]
    if pa.types.is_boolean(col.arrow_type):
        return pa.array([None if v is None else v != 0 for v in ints], pa.bool_())
    if pa.types.is_decimal(col.arrow_type):
        return pa.array(ints, pa.uint64()).cast(col.arrow_type)
    return pa.array(ints, col.arrow_type)


def _convert_integer(col: Column, values: Sequence[Any], report: ConversionReport) -> pa.Array:
    if pa.types.is_boolean(col.arrow_type):  # TINYINT(1) configured as boolean
        return pc.not_equal(pa.array(values, pa.int16()), 0)
    if pa.types.is_decimal(col.arrow_type):  # BIGINT UNSIGNED: exact through uint64
        return pa.array(values, pa.uint64()).cast(col.arrow_type)
    return pa.array(values, col.arrow_type)


def _convert_decimal(col: Column, values: Sequence[Any], report: ConversionReport) -> pa.Array:
    if pa.types.is_string(col.arrow_type):
        # format 'f' keeps every digit; str() would give '0E-30' for a zero DECIMAL(65,30).
        return pa.array(
            [v if v is None or isinstance(v, str) else format(Decimal(v), "f") for v in values],
            pa.string(),
        )
    return pa.array(values, col.arrow_type)


def _convert_date(col: Column, values: Sequence[Any], report: ConversionReport) -> pa.Array:
    # pymysql returns what it cannot parse (zero dates, zero months or days) as str.
    bad = sum(1 for v in values if isinstance(v, str | bytes))
    if bad:
        values = [None if isinstance(v, str | bytes) else v for v in values]
        report.zero_dates_nulled[col.target_name] = (
            report.zero_dates_nulled.get(col.target_name, 0) + bad
        )
    return pa.array(values, col.arrow_type)


def _convert_time(col: Column, values: Sequence[Any], report: ConversionReport) -> pa.Array:
    precision = declared_number(col.column_type) or 0
    return _convert_string(
        col,
        [format_time(v, precision) if isinstance(v, timedelta) else v for v in values],
        report,
    )


def _count_truncated(col: Column, report: ConversionReport, count: int) -> None:
    report.values_truncated[col.target_name] = (
        report.values_truncated.get(col.target_name, 0) + count
    )


def _convert_string(col: Column, values: Sequence[Any], report: ConversionReport) -> pa.Array:
    array = pa.array(values, pa.string())
    limit = col.max_bytes or REDSHIFT_MAX_VARCHAR
    # Measured by Arrow in one pass; Python only touches the (rare) values that are too long.
    too_long = pc.indices_nonzero(pc.greater(pc.binary_length(array), limit)).to_pylist()
    if not too_long:
        return array
    fixed = list(values)
    for i in too_long:
        fixed[i] = truncate_utf8(fixed[i], limit)
    _count_truncated(col, report, len(too_long))
    return pa.array(fixed, pa.string())


def _convert_binary(col: Column, values: Sequence[Any], report: ConversionReport) -> pa.Array:
    array = pa.array(values, pa.binary())
    # Only a MEDIUMBLOB/LONGBLOB value can exceed Redshift's VARBYTE maximum; a cut value
    # (counted) beats a COPY that fails on every run.
    too_long = pc.indices_nonzero(
        pc.greater(pc.binary_length(array), REDSHIFT_MAX_VARBYTE)
    ).to_pylist()
    if not too_long:
        return array
    fixed = list(values)
    for i in too_long:
        fixed[i] = fixed[i][:REDSHIFT_MAX_VARBYTE]
    _count_truncated(col, report, len(too_long))
    return pa.array(fixed, pa.binary())


def _convert_plain(col: Column, values: Sequence[Any], report: ConversionReport) -> pa.Array:
    return pa.array(values, col.arrow_type)


_Converter = Callable[[Column, Sequence[Any], ConversionReport], pa.Array]


_CONVERTERS: dict[Family, _Converter] = {
    Family.INTEGER: _convert_integer,
    Family.BIT: _convert_bit,
    Family.DECIMAL: _convert_decimal,
    Family.FLOAT: _convert_plain,
    Family.DATE: _convert_date,
    Family.DATETIME: _convert_date,
    Family.TIME: _convert_time,
    Family.TEXT: _convert_string,
    Family.BINARY: _convert_binary,
}


def to_record_batch(
    columns: list[Column], rows: Sequence[tuple[Any, ...]]
) -> tuple[pa.RecordBatch, ConversionReport]:
    """pymysql rows of `SELECT select_list(columns)` (default converters) as one batch.

    Values are converted a column at a time; every array has exactly `col.arrow_type`.
    """
    report = ConversionReport()
    widths = {len(row) for row in rows} or {len(columns)}
    if widths != {len(columns)}:
        raise SchemaError(f"rows have {sorted(widths)} values for {len(columns)} columns")
    # Transposed once: each converter then works on one column's values.
    by_column: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
    arrays = []
    for col, values in zip(columns, by_column, strict=True):
        try:
            array = _CONVERTERS[col.family](col, values, report)
        except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
            raise SchemaError(
                f"column {col.source_name!r} ({col.column_type}): cannot convert to "
                f"{col.arrow_type}: {str(exc).splitlines()[0]}"
            ) from None
        if array.type != col.arrow_type:  # a safety net for the positional, strict COPY
            raise SchemaError(
                f"column {col.source_name!r}: built {array.type}, not {col.arrow_type}"
            )
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema(columns)), report


# --- the text reader: the server builds one CSV line per row --------------------------
#
# Reading rows value by value in Python costs most of an extraction's time. Instead the
# SELECT asks the server for one CSV line per row (`csv_line_sql`), the lines are read
# off the socket in blocks (`source.stream_lines`) and Arrow's C++ CSV reader parses a
# batch of them at once into the types below, outside the GIL (`parse_csv_lines`).
# Then the same rules as for pymysql rows apply: the result equals `to_record_batch`'s
# value for value (an integration test compares both readers on every type).
#
# Each field: numbers, dates and TIME as the server prints them; character data as
# utf8mb4 bytes between two 0xFF bytes; binary data as 'x' + HEX(value); NULL as an
# empty field (CONCAT_WS would drop a NULL, shifting the fields). 0xFF never occurs in
# UTF-8, so character data needs no escaping on the server (REPLACE there cost ~25% more
# server CPU, measured); the client turns 0xFF into the CSV quote character, doubling
# that character first in the rare batch that holds it.

_ZERO_DATE = r"^0000-|^\d{4}-00-|^\d{4}-\d{2}-00"
_WRAP = b"\xff"
_QUOTE = b"\x1f"  # the CSV quote character: an ASCII control character text rarely holds
_WRAP_TO_QUOTE = bytes.maketrans(_WRAP, _QUOTE)


def _csv_parse_options(newlines_in_values: bool) -> pa_csv.ParseOptions:
    return pa_csv.ParseOptions(
        delimiter=",",
        quote_char=_QUOTE.decode(),
        double_quote=True,
        escape_char=False,
        newlines_in_values=newlines_in_values,
        ignore_empty_lines=False,  # a one-column row holding NULL is an empty line
    )


# Parsing with newlines_in_values is ~2.5x slower: used only for batches that need it.
_CSV_PARSE = {flag: _csv_parse_options(flag) for flag in (False, True)}


def _is_text(col: Column) -> bool:
    """Character data (quoted in the CSV line); DECIMAL(p>38) and TIME are plain text."""
    return col.family is Family.TEXT


def csv_field_sql(col: Column) -> str:
    """The SQL expression of one column's CSV field (never NULL)."""
    quoted = quote_mysql(col.source_name)
    expr = col.read_sql()
    if col.family is Family.TIME:
        # The server prints TIME(p) with p decimals; format_time's form has 0 or 6.
        precision = declared_number(col.column_type) or 0
        expr = quoted if precision in (0, 6) else f"CONCAT({quoted}, '{'0' * (6 - precision)}')"
    elif col.family is Family.BINARY:
        expr = f"CONCAT('x', HEX({quoted}))"  # 'x': an empty value is not an empty field
    elif col.family is Family.TEXT:
        # Binary, so the server neither converts the bytes again nor refuses the 0xFF;
        # UTF-8 already (or ASCII) needs no CONVERT, which costs server CPU on every row.
        utf8 = quoted if col.charset in UTF8_CHARSETS else f"CONVERT({quoted} USING utf8mb4)"
        expr = f"CONCAT(X'FF', CAST({utf8} AS BINARY), X'FF')"
    # A NOT NULL column needs no IFNULL. Made nullable during the run, a NULL would make
    # CONCAT_WS drop the field: the row then has a field too few and fails the parse.
    return f"IFNULL({expr}, '')" if col.source_nullable else expr


def csv_line_sql(columns: list[Column]) -> str:
    """The one-column SELECT expression: the row as one CSV line."""
    return "CONCAT_WS(',', " + ", ".join(csv_field_sql(c) for c in columns) + ")"


def _csv_type(col: Column, dates_as_text: bool) -> pa.DataType:
    """The type Arrow's CSV reader parses a column's field into."""
    if col.family.is_date:
        # Zero dates fail the direct parse: that batch is parsed again with them as text.
        return pa.string() if dates_as_text else col.arrow_type
    if col.family is Family.TIME:
        return pa.string()
    if pa.types.is_boolean(col.arrow_type):
        return pa.int64()  # TINYINT(1) as boolean holds 2 and 13; BIT(1) is 0 or 1
    if col.family is Family.FLOAT:
        return pa.float64()  # read as a double (the type table's `read`)
    if pa.types.is_binary(col.arrow_type):
        return pa.string()  # 'x' + hex digits
    return col.arrow_type


def _csv_convert_options(columns: list[Column], dates_as_text: bool) -> pa_csv.ConvertOptions:
    return pa_csv.ConvertOptions(
        column_types={f"c{i}": _csv_type(c, dates_as_text) for i, c in enumerate(columns)},
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )


def _from_text_dates(col: Column, values: pa.ChunkedArray, report: ConversionReport) -> Any:
    zero = pc.match_substring_regex(values, _ZERO_DATE)
    bad = int(pc.sum(zero).as_py() or 0)
    if bad:
        values = pc.if_else(zero, pa.scalar(None, pa.string()), values)
    try:
        converted = pc.cast(values, col.arrow_type)
    except pa.ArrowInvalid:
        # Dates the server keeps but that do not exist ('2024-02-30' with
        # ALLOW_INVALID_DATES): one by one, as pymysql would refuse them.
        parsed = []
        for text in values.to_pylist():
            try:
                parsed.append(None if text is None else _parse_datetime(col, text))
            except ValueError:
                parsed.append(None)
                bad += 1
        converted = pa.array(parsed, col.arrow_type)
    if bad:
        report.zero_dates_nulled[col.target_name] = (
            report.zero_dates_nulled.get(col.target_name, 0) + bad
        )
    return converted


def _parse_datetime(col: Column, text: str) -> Any:
    if col.family is Family.DATE:
        return date.fromisoformat(text)
    return datetime.fromisoformat(text)


def _cut_strings(col: Column, values: Any, limit: int, report: ConversionReport) -> Any:
    """Values over `limit` bytes cut (strings at a character boundary) and counted."""
    too_long = pc.greater(pc.binary_length(values), limit)
    if not pc.any(too_long).as_py():
        return values
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
        too_long = pc.greater(pc.binary_length(values), limit)
    offenders = pc.filter(values, too_long).to_pylist()
    if pa.types.is_string(col.arrow_type):
        fixed = pa.array([truncate_utf8(v, limit) for v in offenders], pa.string())
    else:
        fixed = pa.array([v[:limit] for v in offenders], pa.binary())
    _count_truncated(col, report, len(offenders))
    return pc.replace_with_mask(values, too_long, fixed)


def _unhex(values: pa.ChunkedArray) -> pa.Array:
    """`'x'` + hex digits per value (see `csv_field_sql`) as the bytes, a column at once.

    Arrow has no hex-decoding kernel, but the digits of every value lie end to end in
    one buffer once the `'x'` is dropped: one `unhexlify` decodes them all, and each
    value's offsets are half its digits' offsets.
    """
    digits = pc.utf8_slice_codeunits(values.combine_chunks(), 1)
    validity, offsets_buffer, data = digits.buffers()
    slots = digits.offset + len(digits)  # the buffers' entries, those sliced away too
    offsets = pa.Array.from_buffers(pa.int32(), slots + 1, [None, offsets_buffer])
    first, last = offsets[0].as_py(), offsets[slots].as_py()
    decoded = binascii.unhexlify(memoryview(data)[first:last]) if last > first else b""
    shift = pa.scalar(first, pa.int32())
    halves = pc.shift_right(pc.subtract(offsets, shift), pa.scalar(1, pa.int32()))
    return pa.Array.from_buffers(
        pa.binary(),
        len(digits),
        [validity, halves.buffers()[1], pa.py_buffer(decoded)],
        null_count=digits.null_count,
        offset=digits.offset,
    )


def _from_text(col: Column, values: pa.ChunkedArray, report: ConversionReport) -> Any:
    if col.family.is_date:
        return values if values.type == col.arrow_type else _from_text_dates(col, values, report)
    if pa.types.is_boolean(col.arrow_type):
        return pc.not_equal(values, 0)
    if pa.types.is_string(col.arrow_type):
        return _cut_strings(col, values, col.max_bytes or REDSHIFT_MAX_VARCHAR, report)
    if pa.types.is_binary(col.arrow_type):
        return _cut_strings(col, _unhex(values), REDSHIFT_MAX_VARBYTE, report)
    if values.type != col.arrow_type:
        return pc.cast(values, col.arrow_type)
    return values


def _read_csv(
    data: bytes | bytearray,
    columns: list[Column],
    *,
    newlines_in_values: bool,
    dates_as_text: bool,
    block_size: int = 1 << 20,
) -> pa.Table:
    """Arrow's CSV reader on the lines (ArrowInvalid if they do not parse)."""
    return pa_csv.read_csv(
        pa.BufferReader(pa.py_buffer(data)),
        read_options=pa_csv.ReadOptions(
            column_names=[f"c{i}" for i in range(len(columns))],
            block_size=block_size,
            # One thread: the Lambda's other thread is reading the next batch (and on
            # a machine running several extractions, Arrow's pool only adds switching).
            use_threads=False,
        ),
        parse_options=_CSV_PARSE[newlines_in_values],
        convert_options=_csv_convert_options(columns, dates_as_text),
    )


def _below_year_one(values: pa.ChunkedArray) -> bool:
    """Whether a parsed date column holds a year-0000 value (a zero date in MySQL)."""
    lowest = pc.min(values)
    if not lowest.is_valid:
        return False
    floor = date(1, 1, 1) if pa.types.is_date(values.type) else datetime(1, 1, 1)
    return bool(pc.less(lowest, pa.scalar(floor, values.type)).as_py())


def _parse_fast(data: bytes | bytearray, columns: list[Column], rows: int) -> pa.Table | None:
    """The parse that fits almost every batch, or None where it does not.

    It assumes no line break inside a value (the quote-aware parse is ~2.5x slower) and
    no zero or impossible date (dates parse directly, not as text and then cast). A
    line break inside a value ends a line there: the parse fails or gives more rows
    than the batch holds. A zero or impossible date fails the parse; a year-0000 date
    parses, and is caught by its minimum.
    """
    try:
        parsed = _read_csv(data, columns, newlines_in_values=False, dates_as_text=False)
    except pa.ArrowInvalid:
        return None
    if parsed.num_rows != rows:
        return None
    for col, values in zip(columns, parsed.columns, strict=True):
        if col.family.is_date and _below_year_one(values):
            return None
    return parsed


def parse_csv_lines(
    columns: list[Column], lines: bytes | bytearray, rows: int
) -> tuple[pa.Table, ConversionReport]:
    """`rows` values of `csv_line_sql`, each ending in a newline, as an Arrow table."""
    report = ConversionReport()
    data = lines
    if any(_is_text(c) for c in columns):
        if _QUOTE in data:
            data = data.replace(_QUOTE, _QUOTE + _QUOTE)
        data = data.translate(_WRAP_TO_QUOTE)
    parsed = _parse_fast(data, columns, rows)
    if parsed is None:
        # Line breaks (or CRs) inside values need the quote-aware parse; dates come as
        # text, so that zero and impossible ones are found and counted.
        newlines_in_values = data.count(b"\n") != rows or b"\r" in data
        try:
            # One block: a CRLF split between two blocks loses its LF (apache/arrow#51368),
            # and a row larger than a block would not parse.
            parsed = _read_csv(
                data,
                columns,
                newlines_in_values=newlines_in_values,
                dates_as_text=True,
                block_size=len(data) + 1,
            )
        except pa.ArrowInvalid as exc:
            message = str(exc).splitlines()[0]
            raise SchemaError(f"cannot parse the server's rows: {message}") from None
        if parsed.num_rows != rows:  # the safety net: never a shifted or lost row
            raise SchemaError(f"cannot parse the server's rows: {parsed.num_rows} of {rows}")
    del data
    arrays = []
    for col, values in zip(columns, parsed.columns, strict=True):
        try:
            array = _from_text(col, values, report)
        except (pa.ArrowException, ValueError) as exc:
            raise SchemaError(
                f"column {col.source_name!r} ({col.column_type}): cannot convert to "
                f"{col.arrow_type}: {str(exc).splitlines()[0]}"
            ) from None
        if array.type != col.arrow_type:  # the same safety net as to_record_batch's
            raise SchemaError(
                f"column {col.source_name!r}: built {array.type}, not {col.arrow_type}"
            )
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=arrow_schema(columns)), report
