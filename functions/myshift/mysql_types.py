"""The MySQL type table: one row per MySQL `DATA_TYPE`, the only place a type is named.

A row says what a column of that type becomes: its Arrow type (so its Parquet type),
its Redshift column type and VARCHAR byte length, the SQL the readers and checksums read
it through, and the values the doctor's canary file holds for it. The row's `family`
chooses the code that moves the values (the row conversion, the CSV field, the
canonical checksum text); families are few and closed, types are many. Adding a MySQL
type that behaves like one already handled is one row here, and `myshift doctor`
then COPYs its canary values in the user's own account.

Redshift counts VARCHAR lengths in UTF-8 *bytes*. The byte length of a character column
is its length in characters times the most UTF-8 bytes one character of its charset can
take (not MySQL's own bytes per character: a latin1 'é' is one byte in MySQL and two in
UTF-8, and latin1's '€' takes three).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa

REDSHIFT_MAX_VARCHAR = 65535
REDSHIFT_MAX_VARBYTE = 1024000
TIME_VARCHAR_BYTES = 20  # '-838:59:59.000000' is 17

# Most UTF-8 bytes one character of a MySQL charset can take. Only these charsets hold
# characters outside the Basic Multilingual Plane (4 UTF-8 bytes) or only ASCII (1);
# every other charset (utf8mb3, ucs2, latin1 = cp1252 with '€', sjis, gbk...) holds BMP
# characters only, at most 3 UTF-8 bytes each.
_UTF8_BYTES_PER_CHAR = {
    "ascii": 1,
    "binary": 1,
    "utf8mb4": 4,
    "utf16": 4,
    "utf16le": 4,
    "utf32": 4,
    "gb18030": 4,
}
_DEFAULT_UTF8_BYTES_PER_CHAR = 3
_UNKNOWN_CHARSET_UTF8_BYTES_PER_CHAR = 4  # no charset reported: assume the worst
# Charsets whose stored bytes are the UTF-8 bytes themselves: such a column is read
# without a CONVERT (which costs server CPU on every row) and an octet limit carries over.
UTF8_CHARSETS = frozenset({"utf8", "utf8mb3", "utf8mb4", "ascii"})
# Fewest bytes MySQL stores per character (the rest: 1); turns an octet limit into characters.
_MYSQL_MIN_BYTES_PER_CHAR = {"ucs2": 2, "utf16": 2, "utf16le": 2, "utf32": 4}
_TINYINT1 = re.compile(r"^tinyint\(1\)( unsigned)?( zerofill)?$")
_PARENS_NUMBER = re.compile(r"\((\d+)")


class Family(enum.Enum):
    """How a type's values travel: read, converted, written, compared.

    Each family has its own code in `schema` (conversion, CSV field) and `checksum`
    (canonical text); a type joins a family by its row in `MYSQL_TYPES`.
    """

    INTEGER = "integer"  # exact integers; BIGINT UNSIGNED as DECIMAL(20,0)
    BIT = "bit"  # BIT(n): bytes from the server, an integer (or boolean) in the warehouse
    DECIMAL = "decimal"  # DECIMAL(p <= 38) exact; wider ones as their exact text
    FLOAT = "float"  # IEEE 754, read as a double
    DATE = "date"
    DATETIME = "datetime"  # microseconds, no time zone
    TIME = "time"  # a duration up to 838 hours: text
    TEXT = "text"  # character data, UTF-8 in the warehouse
    BINARY = "binary"  # bytes, VARBYTE in the warehouse

    @property
    def is_date(self) -> bool:
        """Zero and impossible dates exist in MySQL: they load as NULL (never NOT NULL)."""
        return self in (Family.DATE, Family.DATETIME)

    @property
    def ordered_in_python(self) -> bool:
        """Python orders pymysql's values as MySQL orders them (strings: collations)."""
        return self in (Family.INTEGER, Family.DECIMAL, Family.DATE, Family.DATETIME)


@dataclass(frozen=True)
class Declared:
    """What information_schema.COLUMNS says about one column's type."""

    data_type: str
    column_type: str  # lower case, ENUM/SET members as declared
    charset: str | None = None
    char_length: int | None = None
    octet_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    tinyint1_as_boolean: bool = False

    @property
    def unsigned(self) -> bool:
        return " unsigned" in self.column_type

    @property
    def declared_number(self) -> int | None:
        return declared_number(self.column_type)


def declared_number(column_type: str) -> int | None:
    """The first number in parentheses: `bit(5)` -> 5, `time(3)` -> 3."""
    found = _PARENS_NUMBER.search(column_type)
    return int(found.group(1)) if found else None


@dataclass(frozen=True)
class Target:
    """What a column becomes: its Arrow type, its Redshift type, a string's byte length."""

    arrow: pa.DataType
    redshift: str
    max_bytes: int | None = None


@dataclass(frozen=True)
class CanaryColumn:
    """One column of the doctor's canary file: a declared type and its edge values.

    `values` are as pymysql returns them, one per edge row (`CANARY_EDGE_ROWS`).
    """

    name: str
    column_type: str
    values: tuple[Any, ...]
    precision: int | None = None
    scale: int | None = None
    length: int | None = None
    octets: int | None = None
    charset: str | None = None


CANARY_EDGE_ROWS = 3


@dataclass(frozen=True)
class MySQLType:
    """One row of the type table.

    `read` is the SQL a value is read through, by both readers and the checksums
    (`{}` is the quoted column). `fits` says that a TEXT type's target always holds every
    value (its byte length is computed from its declared length), so nothing is cut.
    `key_as_bytes`: as a key, compared by its UTF-8 bytes in both engines (as Redshift
    compares), not by the column's collation. `utc`: values are instants the session
    reads in UTC (TIMESTAMP), not wall times in the server's zone.
    """

    family: Family
    target: Callable[[Declared], Target]
    canary: tuple[CanaryColumn, ...]
    read: str = "{}"
    fits: bool = False
    key_as_bytes: bool = False
    utc: bool = False


# --- targets ----------------------------------------------------------------------------


def utf8_bytes_per_char(charset: str | None) -> int:
    """The most UTF-8 bytes one character of `charset` takes."""
    if not charset:
        return _UNKNOWN_CHARSET_UTF8_BYTES_PER_CHAR
    return _UTF8_BYTES_PER_CHAR.get(charset.lower(), _DEFAULT_UTF8_BYTES_PER_CHAR)


def _varchar(chars: int, charset: str | None) -> Target:
    """Redshift bytes for `chars` characters of `charset`: at least 1, at most 65535."""
    size = max(1, min(REDSHIFT_MAX_VARCHAR, chars * utf8_bytes_per_char(charset)))
    return _string(size)


def _string(size: int) -> Target:
    return Target(pa.string(), f"VARCHAR({size})", size)


def _fixed(arrow: pa.DataType, redshift: str) -> Callable[[Declared], Target]:
    return lambda _: Target(arrow, redshift)


def _integer(
    signed: tuple[pa.DataType, str], unsigned: tuple[pa.DataType, str]
) -> Callable[[Declared], Target]:
    """The smallest Arrow/Redshift integer that holds every value of the type."""

    def target(declared: Declared) -> Target:
        if declared.tinyint1_as_boolean and _TINYINT1.match(declared.column_type):
            return Target(pa.bool_(), "BOOLEAN")
        return Target(*(unsigned if declared.unsigned else signed))

    return target


def _decimal(declared: Declared) -> Target:
    precision = declared.precision or 10
    scale = declared.scale or 0
    if precision <= 38:
        return Target(pa.decimal128(precision, scale), f"DECIMAL({precision},{scale})")
    return _string(precision + 2)  # sign and decimal point; the exact decimal text


def _bit(declared: Declared) -> Target:
    bits = declared.precision or declared.declared_number or 1
    if bits == 1:
        return Target(pa.bool_(), "BOOLEAN")
    if bits < 64:
        return Target(pa.int64(), "BIGINT")
    return Target(pa.decimal128(20, 0), "DECIMAL(20,0)")


def _chars(declared: Declared) -> Target:
    chars = declared.char_length
    if chars is None:
        chars = declared.declared_number or 1
    return _varchar(chars, declared.charset)


def _members(declared: Declared) -> Target:
    """ENUM: the longest member; SET: every member and the commas between them."""
    chars = declared.char_length
    if chars is None:
        members = re.findall(r"'(?:[^']|'')*'", declared.column_type)
        lengths = [len(m[1:-1].replace("''", "'")) for m in members] or [1]
        chars = max(lengths) if declared.data_type == "enum" else sum(lengths) + len(lengths) - 1
    return _varchar(chars, declared.charset)


def _text(octets: int) -> Callable[[Declared], Target]:
    """Redshift bytes for a TEXT column holding at most `octets` MySQL bytes."""

    def target(declared: Declared) -> Target:
        held = declared.octet_length or octets
        name = (declared.charset or "utf8mb4").lower()
        if name in UTF8_CHARSETS:
            utf8 = held
        else:
            utf8 = held // _MYSQL_MIN_BYTES_PER_CHAR.get(name, 1) * utf8_bytes_per_char(name)
        return _string(max(1, min(REDSHIFT_MAX_VARCHAR, utf8)))

    return target


def _binary(declared: Declared) -> Target:
    size = declared.char_length
    if size is None:
        size = declared.declared_number or 1
    return Target(pa.binary(), f"VARBYTE({max(1, min(REDSHIFT_MAX_VARBYTE, size))})")


_BLOB = Target(pa.binary(), f"VARBYTE({REDSHIFT_MAX_VARBYTE})")
_INT16, _INT32, _INT64 = (pa.int16(), "SMALLINT"), (pa.int32(), "INTEGER"), (pa.int64(), "BIGINT")
_UINT64 = (pa.decimal128(20, 0), "DECIMAL(20,0)")  # up to 2**64 - 1
_UTF8MB4 = "utf8mb4"


# --- the table --------------------------------------------------------------------------
#
# Canary values: the type's minimum, maximum and an ordinary or awkward value, as pymysql
# returns them; the canary adds a row of NULLs.

MYSQL_TYPES: dict[str, MySQLType] = {
    # Redshift has no 1-byte integer.
    "tinyint": MySQLType(
        Family.INTEGER,
        _integer(_INT16, _INT16),
        (
            CanaryColumn("c_tinyint", "tinyint(4)", (-128, 127, 0), precision=3),
            CanaryColumn("c_tinyint_u", "tinyint(3) unsigned", (0, 255, 1), precision=3),
        ),
    ),
    "smallint": MySQLType(
        Family.INTEGER,
        _integer(_INT16, _INT32),
        (
            CanaryColumn("c_smallint", "smallint(6)", (-32768, 32767, 0), precision=5),
            CanaryColumn("c_smallint_u", "smallint(5) unsigned", (0, 65535, 1), precision=5),
        ),
    ),
    "mediumint": MySQLType(
        Family.INTEGER,
        _integer(_INT32, _INT32),
        (
            CanaryColumn("c_mediumint", "mediumint(9)", (-8388608, 8388607, 0), precision=7),
            CanaryColumn("c_mediumint_u", "mediumint(8) unsigned", (0, 16777215, 1), precision=7),
        ),
    ),
    "int": MySQLType(
        Family.INTEGER,
        _integer(_INT32, _INT64),
        (
            CanaryColumn("c_int", "int(11)", (-2147483648, 2147483647, 0), precision=10),
            CanaryColumn("c_int_u", "int(10) unsigned", (0, 4294967295, 1), precision=10),
        ),
    ),
    "integer": MySQLType(Family.INTEGER, _integer(_INT32, _INT64), ()),  # MySQL reports `int`
    "bigint": MySQLType(
        Family.INTEGER,
        _integer(_INT64, _UINT64),
        (
            CanaryColumn("c_bigint", "bigint(20)", (-(2**63), 2**63 - 1, 0), precision=19),
            CanaryColumn("c_bigint_u", "bigint(20) unsigned", (0, 2**64 - 1, 1), precision=20),
        ),
    ),
    # YEAR prints '0000' for zero: read as a number.
    "year": MySQLType(
        Family.INTEGER,
        _fixed(pa.int16(), "SMALLINT"),
        (CanaryColumn("c_year", "year(4)", (1901, 2155, 2000)),),
        read="({} + 0)",
    ),
    "decimal": MySQLType(
        Family.DECIMAL,
        _decimal,
        (
            CanaryColumn(
                "c_decimal",
                "decimal(15,4)",
                (Decimal("-99999999999.9999"), Decimal("99999999999.9999"), Decimal("-0.5000")),
                precision=15,
                scale=4,
            ),
            CanaryColumn(
                "c_decimal_38",
                "decimal(38,10)",
                (
                    Decimal("-" + "9" * 28 + "." + "9" * 10),
                    Decimal("9" * 28 + "." + "9" * 10),
                    Decimal("0.0000000001"),
                ),
                precision=38,
                scale=10,
            ),
            CanaryColumn(
                "c_decimal_65",
                "decimal(65,30)",
                (
                    Decimal("-" + "9" * 35 + "." + "9" * 30),
                    Decimal("9" * 35 + "." + "9" * 30),
                    Decimal("0E-30"),  # as the server sends a zero: every decimal place
                ),
                precision=65,
                scale=30,
            ),
        ),
    ),
    "numeric": MySQLType(Family.DECIMAL, _decimal, ()),  # MySQL reports `decimal`
    # MySQL sends a FLOAT as text with 6 significant digits (123456789 arrives as
    # 123457000); the sum is a DOUBLE holding the stored float32 exactly.
    "float": MySQLType(
        Family.FLOAT,
        _fixed(pa.float32(), "REAL"),
        (CanaryColumn("c_float", "float", (-3.4028234663852886e38, 1.1754943508222875e-38, 0.1)),),
        read="({} + 0e0)",
    ),
    "double": MySQLType(
        Family.FLOAT,
        _fixed(pa.float64(), "DOUBLE PRECISION"),
        (
            CanaryColumn(
                "c_double", "double", (-1.7976931348623157e308, 2.2250738585072014e-308, 0.1)
            ),
        ),
    ),
    "bit": MySQLType(
        Family.BIT,
        _bit,
        (
            CanaryColumn("c_bit1", "bit(1)", (b"\x00", b"\x01", b"\x01"), precision=1),
            CanaryColumn("c_bit8", "bit(8)", (b"\x00", b"\xff", b"\x80"), precision=8),
            CanaryColumn(
                "c_bit64",
                "bit(64)",
                (b"\x00" * 8, b"\xff" * 8, b"\x80" + b"\x00" * 7),
                precision=64,
            ),
        ),
        read="({} + 0)",  # a binary string: read as its number
    ),
    "date": MySQLType(
        Family.DATE,
        _fixed(pa.date32(), "DATE"),
        (CanaryColumn("c_date", "date", (date(1000, 1, 1), date(9999, 12, 31), date(1970, 1, 1))),),
    ),
    "datetime": MySQLType(
        Family.DATETIME,
        _fixed(pa.timestamp("us"), "TIMESTAMP"),
        (
            CanaryColumn(
                "c_datetime",
                "datetime(6)",
                (
                    datetime(1000, 1, 1, 0, 0, 0),
                    datetime(9999, 12, 31, 23, 59, 59, 999999),
                    datetime(2024, 2, 29, 12, 30, 45, 123456),
                ),
            ),
        ),
    ),
    "timestamp": MySQLType(
        Family.DATETIME,
        _fixed(pa.timestamp("us"), "TIMESTAMP"),
        (
            CanaryColumn(
                "c_timestamp",
                "timestamp(6)",
                (
                    datetime(1970, 1, 1, 0, 0, 1),
                    datetime(2038, 1, 19, 3, 14, 7, 999999),
                    datetime(2000, 1, 1, 0, 0, 0, 1),
                ),
            ),
        ),
        utc=True,
    ),
    "time": MySQLType(
        Family.TIME,
        lambda _: _string(TIME_VARCHAR_BYTES),
        (
            CanaryColumn(
                "c_time",
                "time(6)",
                (
                    -timedelta(hours=838, minutes=59, seconds=59),
                    timedelta(hours=838, minutes=59, seconds=59),
                    timedelta(microseconds=1),
                ),
            ),
        ),
    ),
    "char": MySQLType(
        Family.TEXT,
        _chars,
        (
            CanaryColumn(
                "c_char", "char(10)", ("", "abcdefghij", "é ü"), length=10, charset=_UTF8MB4
            ),
        ),
        fits=True,
        key_as_bytes=True,
    ),
    "varchar": MySQLType(
        Family.TEXT,
        _chars,
        (
            CanaryColumn(
                "c_varchar",
                "varchar(255)",
                ("", "x" * 255, "emoji 😀, CJK 漢字, quote ' \" \\ , newline\n"),
                length=255,
                charset=_UTF8MB4,
            ),
            CanaryColumn(
                "c_varchar_latin1",
                "varchar(20)",
                ("", "Zürich", "naïve"),
                length=20,
                charset="latin1",
            ),
        ),
        fits=True,
        key_as_bytes=True,
    ),
    "enum": MySQLType(
        Family.TEXT,
        _members,
        (
            CanaryColumn(
                "c_enum", "enum('a','bb','ccc')", ("a", "ccc", "bb"), length=3, charset=_UTF8MB4
            ),
        ),
        fits=True,
    ),
    "set": MySQLType(
        Family.TEXT,
        _members,
        (
            CanaryColumn(
                "c_set", "set('a','bb','ccc')", ("", "a,bb,ccc", "bb"), length=8, charset=_UTF8MB4
            ),
        ),
        fits=True,
    ),
    "tinytext": MySQLType(Family.TEXT, _text(255), ()),
    "text": MySQLType(
        Family.TEXT,
        _text(65535),
        (
            CanaryColumn(
                "c_text",
                "text",
                ("", "t" * 5000, "multi\nline\ttext"),
                octets=65535,
                charset=_UTF8MB4,
            ),
        ),
    ),
    "mediumtext": MySQLType(Family.TEXT, _text(16777215), ()),
    "longtext": MySQLType(Family.TEXT, _text(4294967295), ()),
    "json": MySQLType(
        Family.TEXT,
        lambda _: _string(REDSHIFT_MAX_VARCHAR),
        (
            CanaryColumn(
                "c_json",
                "json",
                ("{}", '{"a": [1, 2.5, null, true], "b": "é"}', "[]"),
                octets=4294967295,
                charset=_UTF8MB4,
            ),
        ),
    ),
    # MariaDB 10.7+: loaded as its 36-character text; MariaDB orders UUIDs by their time
    # fields, so as a key it is compared by its text's bytes, as Redshift compares it.
    "uuid": MySQLType(
        Family.TEXT,
        lambda _: _string(36),
        (
            CanaryColumn(
                "c_uuid",
                "uuid",
                (
                    "00000000-0000-0000-0000-000000000000",
                    "ffffffff-ffff-ffff-ffff-ffffffffffff",
                    "123e4567-e89b-12d3-a456-426614174000",
                ),
            ),
        ),
        fits=True,
        key_as_bytes=True,
    ),
    "binary": MySQLType(
        Family.BINARY,
        _binary,
        (
            CanaryColumn(
                "c_binary", "binary(16)", (b"\x00" * 16, b"\xff" * 16, bytes(range(16))), length=16
            ),
        ),
    ),
    "varbinary": MySQLType(
        Family.BINARY,
        _binary,
        (
            CanaryColumn(
                "c_varbinary", "varbinary(255)", (b"", b"\xff" * 255, b"\x00\x01\x02"), length=255
            ),
        ),
    ),
    "tinyblob": MySQLType(Family.BINARY, lambda _: _BLOB, ()),
    "blob": MySQLType(
        Family.BINARY,
        lambda _: _BLOB,
        (CanaryColumn("c_blob", "blob", (b"", bytes(range(256)) * 40, b"\x00"), octets=65535),),
    ),
    "mediumblob": MySQLType(Family.BINARY, lambda _: _BLOB, ()),
    "longblob": MySQLType(Family.BINARY, lambda _: _BLOB, ()),
}


def mysql_type(data_type: str) -> MySQLType | None:
    """The table's row for a `DATA_TYPE` (lower case), or None if it is not mapped."""
    return MYSQL_TYPES.get(data_type)
