"""The text reader without a server: packet framing, the CSV line, its parse, NULL cursors.

`source.stream_lines` is fed MySQL packets through a fake connection (any split of
the bytes into reads); `schema.parse_csv_lines` gets lines as the server builds them.
"""

from __future__ import annotations

import itertools
import random
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pymysql
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from myshift import keys, plan, schema
from myshift.config import TableConfig
from myshift.errors import ConfigError, SchemaError
from myshift.schema import (
    REDSHIFT_MAX_VARCHAR,
    columns_from_information_schema,
    csv_field_sql,
    csv_line_sql,
    parse_csv_lines,
)
from myshift.source import OversizeRowError, classify, stream_lines

from tests.support.packets import EOF_PACKET, error_packet, lenenc, packet
from tests.support.schema_rows import info

# --- MySQL packets -----------------------------------------------------------------------


class Reads:
    """A socket file returning the stream in the given read sizes."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self.data, self.pos = data, 0
        self.sizes = itertools.cycle(sizes)

    def read1(self, n: int) -> bytes:
        size = min(n, next(self.sizes))
        out = self.data[self.pos : self.pos + size]
        self.pos += len(out)
        return out

    def read(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        self.pos += len(out)
        return out


class FakeResult:
    def __init__(self, field_count: int) -> None:
        self.field_count = field_count
        self.unbuffered_active = True
        self.has_next = None
        self.connection = object()


class FakeConnection:
    """What `wire.UnbufferedResult` uses of a pymysql connection (checked: test_wire.py)."""

    encoding = "utf8"

    def __init__(self, stream: bytes, sizes: list[int], field_count: int = 1) -> None:
        self._rfile = Reads(stream, sizes)
        self._next_seq_id = 3  # after the column count, one definition and its EOF
        self._field_count = field_count
        self._result: FakeResult | None = None
        self.closed = False
        self.sent: str | None = None

    def escape(self, value: Any) -> str:
        return pymysql.converters.escape_item(value, "utf8")

    def query(self, sql: str, unbuffered: bool = False) -> None:
        self.sent = sql
        self._result = FakeResult(self._field_count)

    def _force_close(self) -> None:
        self.closed = True


def result_stream(values: list[bytes | None], tail: bytes = EOF_PACKET) -> bytes:
    seq = 3
    out = b""
    for value in values:
        out += packet(seq, b"\xfb" if value is None else lenenc(value))
        seq += 1
    return out + packet(seq, tail)


def read_all(conn: FakeConnection, batch_rows: int = 2) -> list[tuple[bytes, int]]:
    return [
        (bytes(lines), count) for lines, count in stream_lines(conn, "SELECT %s", [1], batch_rows)
    ]


VALUES = [b"a", b"", b"x" * 250, b"y" * 251, b"z" * 70_000, "caf\u00e9,\n\x1f".encode(), b"last"]


@pytest.mark.parametrize("sizes", [[1 << 20], [1], [7], [3, 5, 1000], [250, 4096]])
def test_lines_come_back_whatever_the_reads(sizes: list[int]) -> None:
    conn = FakeConnection(result_stream(VALUES), sizes)
    batches = read_all(conn)
    assert b"".join(lines for lines, _ in batches) == b"".join(v + b"\n" for v in VALUES)
    assert sum(count for _, count in batches) == len(VALUES)
    assert all(lines.count(b"\n") >= count for lines, count in batches)
    assert conn.sent == "SELECT 1"
    assert not conn.closed
    assert conn._result is not None and conn._result.unbuffered_active is False
    assert not conn._result.has_next
    assert conn._next_seq_id == (3 + len(VALUES) + 1) % 256


def test_batches_hold_about_batch_rows() -> None:
    values = [str(i).encode() for i in range(1000)]
    conn = FakeConnection(result_stream(values), [64])
    counts = [count for _, count in read_all(conn, batch_rows=100)]
    assert sum(counts) == 1000
    assert max(counts) < 100 + 64  # at most one read's rows more than a batch


def test_sequence_numbers_wrap_around() -> None:
    values = [b"v"] * 600
    conn = FakeConnection(result_stream(values), [4096])
    assert sum(count for _, count in read_all(conn, 1000)) == 600


def test_an_empty_result_yields_nothing() -> None:
    conn = FakeConnection(result_stream([]), [100])
    assert read_all(conn) == []
    assert not conn.closed


def test_a_null_line_means_an_oversize_row() -> None:
    conn = FakeConnection(result_stream([b"a", None, b"b"]), [100])
    with pytest.raises(OversizeRowError):
        read_all(conn)
    assert conn.closed  # the rest of the result is still on the wire


def test_a_row_of_16_mb_means_an_oversize_row() -> None:
    big = b"\xff\xff\xff\x03" + b"\xfe" + b"\x00" * (0xFFFFFF - 1)
    conn = FakeConnection(big + packet(4, b"\x00"), [1 << 20])
    with pytest.raises(OversizeRowError):
        read_all(conn)
    assert conn.closed


def test_a_server_error_mid_result_is_raised_as_pymysql_raises_it() -> None:
    stream = result_stream([b"a"], tail=error_packet(1317, "Query execution was interrupted"))
    conn = FakeConnection(stream, [100])
    with pytest.raises(pymysql.err.OperationalError) as raised:
        read_all(conn)
    assert raised.value.args[0] == 1317
    # Our query killed from another session is worth a retry.
    assert type(classify(raised.value, "db")).__name__ == "SourceUnavailableError"


@pytest.mark.parametrize(
    "stream",
    [
        result_stream([b"a", b"b"])[:-3],  # the connection drops mid-packet
        packet(3, lenenc(b"a")) + packet(9, lenenc(b"b")),  # out of sequence
        result_stream([b"a"]) + b"junk",  # bytes after the end of the result
    ],
)
def test_a_broken_stream_is_a_lost_connection(stream: bytes) -> None:
    conn = FakeConnection(stream, [100])
    with pytest.raises(pymysql.err.OperationalError) as raised:
        read_all(conn)
    assert raised.value.args[0] == 2013
    assert conn.closed
    assert type(classify(raised.value, "db")).__name__ == "SourceUnavailableError"


def test_stopping_early_closes_the_connection() -> None:
    conn = FakeConnection(result_stream([b"v"] * 100), [16])
    lines = stream_lines(conn, "SELECT 1", [], 5)
    next(lines)
    lines.close()
    assert conn.closed


def test_more_than_one_column_is_refused() -> None:
    conn = FakeConnection(result_stream([b"a"]), [100], field_count=2)
    with pytest.raises(pymysql.err.ProgrammingError):
        read_all(conn)


# --- the CSV line and its parse -------------------------------------------------------


def text(value: str | None) -> bytes:
    """A character field as the server builds it."""
    return b"" if value is None else b"\xff" + value.encode() + b"\xff"


def lines_of(rows: list[list[bytes]]) -> tuple[bytes, int]:
    return b"".join(b",".join(fields) + b"\n" for fields in rows), len(rows)


def test_field_sql_per_type() -> None:
    cols = columns_from_information_schema(
        [
            info("i", "int", nullable=False),
            info("f", "float"),
            info("b", "bit", "bit(5)", precision=5),
            info("t0", "time"),
            info("t3", "time", "time(3)"),
            info("t6", "time", "time(6)"),
            info("v", "varchar", "varchar(10)", chars=10, charset="latin1"),
            info("bl", "blob"),
            info("d", "decimal", "decimal(65,30)", precision=65, scale=30),
            info("u", "varchar", "varchar(10)", chars=10, charset="utf8mb4", nullable=False),
            info("j", "json", charset="utf8mb4"),
            info("dt", "datetime", "datetime(6)", dt_precision=6, nullable=False),
        ]
    )
    sql = {c.source_name: csv_field_sql(c) for c in cols}
    assert sql["i"] == "`i`"  # NOT NULL: no IFNULL
    assert sql["f"] == "IFNULL((`f` + 0e0), '')"
    assert sql["b"] == "IFNULL((`b` + 0), '')"
    assert sql["t0"] == "IFNULL(`t0`, '')"
    assert sql["t3"] == "IFNULL(CONCAT(`t3`, '000'), '')"
    assert sql["t6"] == "IFNULL(`t6`, '')"
    assert sql["v"] == (
        "IFNULL(CONCAT(X'FF', CAST(CONVERT(`v` USING utf8mb4) AS BINARY), X'FF'), '')"
    )
    assert sql["bl"] == "IFNULL(CONCAT('x', HEX(`bl`)), '')"
    assert sql["d"] == "IFNULL(`d`, '')"  # the exact digits, unquoted
    # UTF-8 already: no CONVERT; NOT NULL in the source: no IFNULL (the target's DATETIME
    # is nullable all the same, for zero dates).
    assert sql["u"] == "CONCAT(X'FF', CAST(`u` AS BINARY), X'FF')"
    assert sql["j"] == "IFNULL(CONCAT(X'FF', CAST(`j` AS BINARY), X'FF'), '')"
    assert sql["dt"] == "`dt`"
    assert next(c for c in cols if c.source_name == "dt").nullable
    assert csv_line_sql(cols[:2]) == "CONCAT_WS(',', `i`, IFNULL((`f` + 0e0), ''))"


def test_null_and_empty_strings_differ() -> None:
    cols = columns_from_information_schema([info("s", "varchar", chars=5, charset="utf8mb4")])
    table, _ = parse_csv_lines(cols, *lines_of([[text("")], [text(None)], [text("a")]]))
    assert table.column(0).to_pylist() == ["", None, "a"]


def test_text_needs_no_escaping() -> None:
    cols = columns_from_information_schema([info("a", "text", charset="utf8mb4"), info("b", "int")])
    hard = ['"quoted", comma', "new\nline\r\n", "unit\x1fsep\x1f\x1f", "\U0001f600", ""]
    table, _ = parse_csv_lines(cols, *lines_of([[text(v), b"1"] for v in hard]))
    assert table.column(0).to_pylist() == hard
    assert table.column(1).to_pylist() == [1] * len(hard)


def test_one_column_rows_holding_null() -> None:
    cols = columns_from_information_schema([info("n", "int")])
    table, _ = parse_csv_lines(cols, *lines_of([[b""], [b"5"], [b""]]))
    assert table.column(0).to_pylist() == [None, 5, None]


def test_numbers_parse_exactly() -> None:
    cols = columns_from_information_schema(
        [
            info("bu", "bigint", "bigint unsigned"),
            info("d", "decimal", "decimal(15,4)", precision=15, scale=4),
            info("d65", "decimal", "decimal(65,30)", precision=65, scale=30),
            info("f", "float"),
            info("b1", "bit", "bit(1)", precision=1),
            info("b64", "bit", "bit(64)", precision=64),
            info("t1", "tinyint", "tinyint(1)"),
        ],
        tinyint1_as_boolean=True,
    )
    big65 = "-" + "9" * 35 + "." + "9" * 30
    row = [
        b"18446744073709551615",
        b"-99999999999.9999",
        big65.encode(),
        b"0.10000000149011612",
        b"1",
        b"18446744073709551615",
        b"13",
    ]
    table, _ = parse_csv_lines(cols, *lines_of([row, [b""] * 7]))
    assert table.to_pylist()[0] == {
        "bu": Decimal(18446744073709551615),
        "d": Decimal("-99999999999.9999"),
        "d65": big65,
        "f": pytest.approx(0.1, rel=1e-7),
        "b1": True,
        "b64": Decimal(18446744073709551615),
        "t1": True,
    }
    assert table.column("f").type == pa.float32()
    assert table.column("f").to_pylist()[0] == pa.array([0.1], pa.float32()).to_pylist()[0]
    assert table.to_pylist()[1] == dict.fromkeys(table.column_names)


def date_columns() -> list:
    """A DATE `d` and a DATETIME(6) `dt`."""
    return columns_from_information_schema(
        [info("d", "date"), info("dt", "datetime", "datetime(6)", dt_precision=6)]
    )


def test_zero_and_impossible_dates_are_nulled_and_counted() -> None:
    cols = date_columns()
    rows = [
        [b"2024-02-29", b"2024-02-29 12:34:56.000001"],
        [b"0000-00-00", b"0000-00-00 00:00:00.000000"],
        [b"2021-02-00", b"2021-00-01 00:00:00.000000"],
        [b"2024-02-30", b"9999-12-31 23:59:59.999999"],  # ALLOW_INVALID_DATES
        [b"", b""],
    ]
    table, report = parse_csv_lines(cols, *lines_of(rows))
    assert table.column("d").to_pylist() == [date(2024, 2, 29), None, None, None, None]
    assert table.column("dt").to_pylist() == [
        datetime(2024, 2, 29, 12, 34, 56, 1),
        None,
        None,
        datetime(9999, 12, 31, 23, 59, 59, 999999),
        None,
    ]
    assert report.zero_dates_nulled == {"d": 3, "dt": 2}


def test_long_text_is_cut_at_a_character_boundary_and_counted() -> None:
    cols = columns_from_information_schema(
        [
            info("t", "mediumtext", charset="utf8mb4"),
            info("v", "varchar", chars=2, charset="utf8mb4"),
        ]
    )
    long = "a" * (REDSHIFT_MAX_VARCHAR - 1) + "\u00e9tail"
    table, report = parse_csv_lines(cols, *lines_of([[text(long), text("\U0001f600\U0001f600")]]))
    assert table.column("t").to_pylist() == ["a" * (REDSHIFT_MAX_VARCHAR - 1)]
    assert table.column("v").to_pylist() == ["\U0001f600\U0001f600"]  # 8 bytes: fits
    assert report.values_truncated == {"t": 1}


def test_binary_from_hex() -> None:
    cols = columns_from_information_schema([info("b", "varbinary", "varbinary(4)", chars=4)])
    table, _ = parse_csv_lines(cols, *lines_of([[b"x00FF22"], [b"x"], [b""]]))
    assert table.column(0).to_pylist() == [b"\x00\xff\x22", b"", None]


@given(st.lists(st.none() | st.binary(max_size=40), min_size=1, max_size=60))
@settings(max_examples=100, deadline=None)
def test_any_binary_values_come_back_exactly(values: list[bytes | None]) -> None:
    # The hex of every value is decoded a column at a time: offsets, NULLs and empty
    # values must stay in their rows.
    cols = columns_from_information_schema([info("b", "blob"), info("i", "int")])
    rows = [
        [b"" if v is None else b"x" + v.hex().upper().encode(), str(i).encode()]
        for i, v in enumerate(values)
    ]
    table, _ = parse_csv_lines(cols, *lines_of(rows))
    assert table.column("b").to_pylist() == values
    assert table.column("i").to_pylist() == list(range(len(values)))


def test_a_row_with_a_missing_field_is_an_error_not_a_shift() -> None:
    cols = columns_from_information_schema([info("a", "int"), info("b", "int")])
    with pytest.raises(SchemaError, match="parse"):
        parse_csv_lines(cols, *lines_of([[b"1", b"2"], [b"3"]]))


# --- NULL cursors in the order key ----------------------------------------------------


def _matches(sql: str, params: list[Any], row: dict[str, Any]) -> bool:
    """Evaluate a predicate of `keys` in Python (NULL-guarded, so short-circuit is SQL's)."""
    expression = sql.replace("`", "")
    for sql_op, py_op in (
        (" IS NOT NULL", " is not None"),
        (" <=> NULL", " is None"),
        (" = ", " == "),
        (" AND ", " and "),
        (" OR ", " or "),
        ("TRUE", "True"),
    ):
        expression = expression.replace(sql_op, py_op)
    for value in params:
        expression = expression.replace("%s", repr(value), 1)
    return bool(eval(expression, {}, dict(row)))


def _order(row: tuple[int | None, int]) -> tuple[int, int, int]:
    return (0, 0, row[1]) if row[0] is None else (1, row[0], row[1])


ROWS = [(c, i) for c in (None, 0, 1, 2) for i in range(3)]


@given(
    lower=st.sampled_from([None, *ROWS]),
    upper=st.sampled_from([None, *ROWS]),
)
@settings(max_examples=60)
def test_null_cursor_range_orders_nulls_first(
    lower: tuple[int | None, int] | None, upper: tuple[int | None, int] | None
) -> None:
    sql, params = keys.key_range(
        ["c", "id"],
        None if lower is None else list(lower),
        None if upper is None else list(upper),
        include_null_cursor=True,
    )
    for row in ROWS:
        expected = (lower is None or _order(row) > _order(lower)) and (
            upper is None or _order(row) <= _order(upper)
        )
        assert _matches(sql, params, {"c": row[0], "id": row[1]}) == expected, row


def test_key_range_without_null_cursors_is_unchanged() -> None:
    assert keys.key_range(["c", "id"], None, None) == ("`c` IS NOT NULL", [])
    assert keys.to_key([None, 5]) == [None, 5]


# --- the key check ----------------------------------------------------------------------


def index(name: str, columns: list[str], unique: bool = True, nullable: tuple = ()) -> plan.Index:
    return plan.Index(name, unique, list(columns), list(nullable))


def test_the_primary_key_or_a_unique_not_null_index_is_a_key() -> None:
    indexes = [
        index("PRIMARY", ["id"]),
        index("uk_order", ["shop", "order_no"]),
        index("idx_updated", ["updated_at", "id"], unique=False),
    ]
    plan.check_key(indexes, "db.t", ["id"])
    plan.check_key(indexes, "db.t", ["ID"])  # MySQL names are case-insensitive
    plan.check_key(indexes, "db.t", ["order_no", "shop"], "unique_key")
    with pytest.raises(SchemaError, match=r"primary_key \(updated_at\) does not identify a row"):
        plan.check_key(indexes, "db.t", ["updated_at"])
    assert plan.has_cursor_index(indexes, "UPDATED_AT")
    assert not plan.has_cursor_index(indexes, "order_no")


def test_the_order_index_holds_the_rows_in_key_order() -> None:
    cursor_then_other = index("idx_u_status", ["updated_at", "status"], unique=False)
    cursor_alone = index("idx_u", ["Updated_At"], unique=False)  # InnoDB appends the key
    cursor_and_key = index("idx_u_id", ["updated_at", "id"], unique=False)
    primary = index("PRIMARY", ["id"])
    assert plan.order_index([primary, cursor_then_other, cursor_alone], "updated_at", ["id"]) == (
        "idx_u"
    )
    assert plan.order_index([primary, cursor_and_key], "updated_at", ["ID"]) == "idx_u_id"
    assert plan.order_index([primary, cursor_then_other], "updated_at", ["id"]) is None
    assert plan.order_index([index("PRIMARY", ["updated_at", "id"])], "updated_at", ["id"]) == (
        "PRIMARY"
    )
    # A key of two columns: a prefix of it still orders the rows, another column does not.
    assert plan.order_index([index("i", ["u", "a"])], "u", ["a", "b"]) == "i"
    assert plan.order_index([index("i", ["u", "b"])], "u", ["a", "b"]) is None


def test_a_forced_order_index_is_quoted_in_the_chunk_query() -> None:
    cols = columns_from_information_schema([info("id", "int"), info("u", "datetime")])
    sql, _ = plan_chunk_query(cols, "idx`x")
    assert "FROM `db`.`t` FORCE INDEX (`idx``x`) WHERE" in sql
    assert "FORCE INDEX" not in plan_chunk_query(cols, None)[0]


def plan_chunk_query(cols: list, order_index: str | None) -> tuple[str, list]:
    from myshift import extract

    return extract.chunk_query(
        "db", "t", cols, ["u", "id"], None, ["2024-01-01 00:00:00.000000", 1], "text",
        order_index=order_index,
    )  # fmt: skip


def test_a_table_without_a_primary_key_needs_unique_key() -> None:
    indexes = [index("uk", ["code"]), index("uk_null", ["alt"], nullable=("alt",))]
    with pytest.raises(SchemaError, match="has no PRIMARY KEY: configure unique_key"):
        plan.check_key(indexes, "db.t", ["code"], "primary_key")
    plan.check_key(indexes, "db.t", ["code"], "unique_key")
    with pytest.raises(SchemaError, match="UNIQUE uk_null allows NULL in alt"):
        plan.check_key(indexes, "db.t", ["alt"], "unique_key")


def test_a_table_without_any_key_is_refused() -> None:
    with pytest.raises(SchemaError, match="no PRIMARY KEY and no UNIQUE index of NOT NULL"):
        plan.check_key([index("i", ["a"], unique=False)], "db.t", ["a"], "unique_key")


def test_unique_key_in_the_pipeline_file() -> None:
    table = TableConfig(name="db.t", cursor="updated_at", unique_key=["shop", "order_no"])
    assert table.primary_key == ["shop", "order_no"] and table.key_source == "unique_key"
    assert TableConfig(name="db.t", cursor="u", primary_key=["id"]).key_source == "primary_key"
    with pytest.raises((ConfigError, ValueError), match="not both"):
        TableConfig(name="db.t", cursor="u", primary_key=["id"], unique_key=["code"])
    assert TableConfig(name="db.t", cursor="u", primary_key=["id"]).load_null_cursor is False


def test_a_row_larger_than_a_parse_block() -> None:
    cols = columns_from_information_schema(
        [info("t", "longtext", charset="utf8mb4"), info("i", "int")]
    )
    big = "\u00e9" * 1_500_000 + "\n"  # 3 MB, with a newline: the quote-aware parse
    table, report = parse_csv_lines(cols, *lines_of([[text(big), b"1"], [text("s"), b"2"]]))
    assert table.column("i").to_pylist() == [1, 2]
    assert table.column("t").to_pylist() == ["\u00e9" * (REDSHIFT_MAX_VARCHAR // 2), "s"]
    assert report.values_truncated == {"t": 1}


# --- the fast parse and its fallback ------------------------------------------------------


def test_year_0000_dates_that_arrow_parses_are_nulled_and_counted() -> None:
    # Arrow parses these directly (year 0 exists for it); MySQL's zero dates must not pass.
    cols = date_columns()
    rows = [
        [b"2024-02-29", b"2024-02-29 12:34:56.000001"],
        [b"0000-01-01", b"0000-06-15 10:00:00.000000"],
        [b"0001-01-01", b"0001-01-01 00:00:00.000000"],
        [b"9999-12-31", b"9999-12-31 23:59:59.999999"],
    ]
    table, report = parse_csv_lines(cols, *lines_of(rows))
    assert table.column("d").to_pylist() == [
        date(2024, 2, 29),
        None,
        date(1, 1, 1),
        date(9999, 12, 31),
    ]
    assert table.column("dt").to_pylist() == [
        datetime(2024, 2, 29, 12, 34, 56, 1),
        None,
        datetime(1, 1, 1),
        datetime(9999, 12, 31, 23, 59, 59, 999999),
    ]
    assert report.zero_dates_nulled == {"d": 1, "dt": 1}


ZERO_DATETIME = "0000-00-00 00:00:00.000000"

_HARD_TEXT = st.text(alphabet=[",", "\n", "\r", "\x1f", '"', "a", "\u00e9", "\U0001f600"])


@given(
    st.lists(
        st.tuples(
            st.none() | _HARD_TEXT,
            st.none() | st.integers(-(2**31), 2**31 - 1),
            st.none()
            | st.just(ZERO_DATETIME)
            | st.datetimes(datetime(1000, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999)),
        ),
        min_size=1,
        max_size=40,
    )
)
@settings(max_examples=150, deadline=None)
def test_any_rows_parse_exactly(rows: list[tuple[str | None, int | None, Any]]) -> None:
    cols = columns_from_information_schema(
        [
            info("t", "text", charset="utf8mb4"),
            info("i", "int"),
            info("dt", "datetime", "datetime(6)", dt_precision=6),
        ]
    )

    def dt_field(value: Any) -> bytes:
        if value is None:
            return b""
        if isinstance(value, str):
            return value.encode()
        return value.isoformat(sep=" ", timespec="microseconds").encode()

    fields = [[text(t), b"" if i is None else b"%d" % i, dt_field(d)] for t, i, d in rows]
    table, report = parse_csv_lines(cols, *lines_of(fields))
    assert table.num_rows == len(rows)
    assert table.column("t").to_pylist() == [t for t, _, _ in rows]
    assert table.column("i").to_pylist() == [i for _, i, _ in rows]
    assert table.column("dt").to_pylist() == [None if isinstance(d, str) else d for _, _, d in rows]
    zeros = sum(d == ZERO_DATETIME for _, _, d in rows)
    assert report.zero_dates_nulled == ({"dt": zeros} if zeros else {})
    assert report.values_truncated == {}


def _rows_across_blocks(shift: int) -> list[tuple[str, int]]:
    """About 3 MB of (text, int) rows; every ~50th text holds a line break.

    Two texts are placed so that their line break sits at the 1 MB and 2 MB offsets
    (moved by `shift`): '\\r\\n' astride the first, '\\n' on the second.
    """
    rng = random.Random(shift)
    targets = [(1 << 20) + shift, (2 << 20) + shift]
    rows: list[tuple[str, int]] = []
    size = 0  # bytes of lines so far
    while size < 3 << 20:
        i = len(rows)
        row_bytes = len(f"\xff\xff,{i}\n")
        if targets and size + 200 > targets[0]:
            # The break's '\n' lands on the target: 1 byte of 0xFF, k of 'a', then '\r'.
            newline = "\r\n" if len(targets) == 2 else "\n"
            k = targets.pop(0) - size - 1 - len(newline) + 1
            value = "a" * k + newline + "tail"
        elif i % 50 == 49:
            value = "b" * rng.randrange(60) + rng.choice(["\n", "\r\n"]) + "c" * rng.randrange(60)
        else:
            value = "plain " + "x" * rng.randrange(120)
        rows.append((value, i))
        size += row_bytes + len(value.encode())
    return rows


@pytest.mark.parametrize("shift", [-1, 0, 1])
def test_line_breaks_across_parse_blocks(shift: int) -> None:
    cols = columns_from_information_schema([info("t", "text", charset="utf8mb4"), info("i", "int")])
    rows = _rows_across_blocks(shift)
    lines, count = lines_of([[text(t), b"%d" % i] for t, i in rows])
    assert len(lines) > 3 << 20
    for target in ((1 << 20) + shift, (2 << 20) + shift):
        assert lines[target : target + 1] == b"\n"  # the placed break is where intended
    table, report = parse_csv_lines(cols, lines, count)
    assert table.num_rows == len(rows)
    assert table.column("t").to_pylist() == [t for t, _ in rows]
    assert table.column("i").to_pylist() == [i for _, i in rows]
    assert report.values_truncated == {} and report.zero_dates_nulled == {}


def _recording_read_csv(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    real = schema._read_csv

    def wrapper(*args: Any, **kwargs: Any) -> pa.Table:
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(schema, "_read_csv", wrapper)
    return calls


def test_a_plain_batch_takes_the_fast_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _recording_read_csv(monkeypatch)
    cols = columns_from_information_schema(
        [
            info("t", "varchar", chars=20, charset="utf8mb4"),
            info("dt", "datetime", "datetime(6)", dt_precision=6),
        ]
    )
    rows = [[text('a, "b"'), b"2024-01-02 03:04:05.000006"], [text(None), b""]]
    table, report = parse_csv_lines(cols, *lines_of(rows))
    assert table.to_pylist() == [
        {"t": 'a, "b"', "dt": datetime(2024, 1, 2, 3, 4, 5, 6)},
        {"t": None, "dt": None},
    ]
    assert report.zero_dates_nulled == {}
    assert len(calls) == 1
    assert calls[0]["newlines_in_values"] is False
    assert calls[0]["dates_as_text"] is False

    calls.clear()
    rows.append([text("z"), ZERO_DATETIME.encode()])
    table, report = parse_csv_lines(cols, *lines_of(rows))
    assert table.column("dt").to_pylist() == [datetime(2024, 1, 2, 3, 4, 5, 6), None, None]
    assert report.zero_dates_nulled == {"dt": 1}
    assert len(calls) == 2
    assert calls[0]["dates_as_text"] is False
    assert calls[1]["dates_as_text"] is True
    assert calls[1]["newlines_in_values"] is False
