"""The edge-types table in MariaDB: every supported MySQL type at its edges, four rows.

Read by the schema, reader and checksum integration tests and by the types e2e test.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from myshift.identifiers import quote_mysql_table
from pymysql.cursors import Cursor

TABLE = "edge_types"

CREATE_TABLE = """
CREATE TABLE {table} (
  id INT NOT NULL PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, ti1 TINYINT(1),
  si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, miu MEDIUMINT UNSIGNED,
  i INT, iu INT UNSIGNED,
  bi BIGINT, biu BIGINT UNSIGNED,
  yr YEAR,
  d154 DECIMAL(15,4), d3810 DECIMAL(38,10), d6530 DECIMAL(65,30),
  f FLOAT, dbl DOUBLE,
  b1 BIT(1), b5 BIT(5), b64 BIT(64),
  dt DATE, dpart DATE, dtm DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL,
  dz DATETIME NOT NULL DEFAULT '0000-00-00 00:00:00',
  tm TIME, tm1 TIME(1),
  vu VARCHAR(10) CHARACTER SET utf8mb4, vl VARCHAR(10) CHARACTER SET latin1,
  ch CHAR(3) CHARACTER SET utf8mb4,
  en ENUM('small','medium','large') CHARACTER SET utf8mb4,
  st SET('a','bb','ccc') CHARACTER SET utf8mb4,
  js JSON, tt TINYTEXT CHARACTER SET utf8mb4, lt LONGTEXT CHARACTER SET utf8mb4,
  bn BINARY(4), vb VARBINARY(16), bl BLOB,
  `order` INT, `190_time` INT, `Mixed Case` INT, `we``ird` INT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
"""

BIG_38 = "9" * 28 + "." + "9" * 10
BIG_65 = "9" * 35 + "." + "9" * 30
EMOJI = "\U0001f600"
LATIN1 = "é" * 9 + "€"  # 10 latin1 characters, 21 UTF-8 bytes
LONG_TEXT = "a" * 65533 + EMOJI + "tail"  # 65541 bytes; the emoji straddles byte 65535
BLOB = bytes(range(256)) * 100

COLUMNS = (
    "id, ti, tiu, ti1, si, siu, mi, miu, i, iu, bi, biu, yr, d154, d3810, d6530, f, dbl, "
    "b1, b5, b64, dt, dpart, dtm, ts, dz, tm, tm1, vu, vl, ch, en, st, js, tt, lt, bn, vb, bl, "
    "`order`, `190_time`, `Mixed Case`, `we``ird`"
)
ROWS: list[tuple[Any, ...]] = [
    (  # the low end
        1, -128, 0, 2, -32768, 0, -8388608, 0, -2147483648, 0,
        -9223372036854775808, 0, 1901, "-99999999999.9999", "-" + BIG_38, "-" + BIG_65,
        -3.4028234e38, -1.7976931348623157e308, 0, 0, 0,
        "1000-01-01", "2000-01-01", "1000-01-01 00:00:00.000000", "1970-01-01 00:00:01.000000",
        "1000-01-01 00:00:00", "-838:59:59", "-00:00:00.5",
        EMOJI * 10, LATIN1, "abc", "small", "", '{"k": "é", "n": [1, 2]}', "x" * 255,
        LONG_TEXT, b"ab", b"\x00\xff", BLOB, 1, 2, 3, 4,
    ),
    (  # the high end
        2, 127, 255, 13, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295,
        9223372036854775807, 18446744073709551615, 2155, "99999999999.9999", BIG_38, BIG_65,
        123456789, 0.1e0 + 0.2e0, 1, 31, 18446744073709551615,
        "9999-12-31", "2024-02-29", "9999-12-31 23:59:59.999999", "2038-01-19 03:14:07.999999",
        "2024-02-29 12:34:56", "838:59:59", "100:00:00.5",
        "ab" + EMOJI, "plain", "é€", "large", "a,bb,ccc", "[]", "ü" * 127,
        "short", b"abcd", b"", b"", 5, 6, 7, 8,
    ),
]  # fmt: skip
ZERO_ROW = (
    "INSERT INTO {table} (id, dt, dpart, dtm, ts, dz, d6530) VALUES "
    "(3, '0000-00-00', '2021-02-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', "
    "'0000-00-00 00:00:00', 0)"
)
NULL_ROW = "INSERT INTO {table} (id) VALUES (4)"


@contextmanager
def edge_table(cur: Cursor, database: str) -> Iterator[str]:
    """`database` created afresh, holding TABLE and its four rows; yields TABLE's quoted name.

    Inside, sql_mode is '': a NOT NULL DATETIME defaults to a zero date, and zero dates
    and values too long for their column can be inserted (the caller may add rows).
    """
    table = quote_mysql_table(database, TABLE)
    cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
    cur.execute(f"CREATE DATABASE `{database}`")
    cur.execute("SET SESSION sql_mode = ''")
    cur.execute(CREATE_TABLE.format(table=table))
    marks = ", ".join(["%s"] * len(ROWS[0]))
    cur.executemany(f"INSERT INTO {table} ({COLUMNS}) VALUES ({marks})", ROWS)
    cur.execute(ZERO_ROW.format(table=table))
    cur.execute(NULL_ROW.format(table=table))
    yield table
    cur.execute("SET SESSION sql_mode = DEFAULT")
