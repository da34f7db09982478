"""Planning one table's run: freeze the upper bound, cut chunks on the order key.

The bound is frozen once, before any chunk is read, so every chunk and the load see
the same rows: not later than the source's `NOW() - safety_lag`, and not later than
the start of the oldest open transaction (a row it writes may carry an earlier
timestamp and commit after we read past it). Chunk boundaries come from one
server-side query numbering the keys, so chunks can be extracted in parallel.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

import pymysql

from myshift import keys
from myshift.errors import SchemaError
from myshift.identifiers import quote_mysql, quote_mysql_table
from myshift.schema import Column
from myshift.source import query_all

TIME_CURSOR_TYPES = {"datetime", "timestamp", "date"}


@dataclass(frozen=True)
class Chunk:
    """One slice of the run: rows with `lower < key <= upper` (lower None: from the start)."""

    index: int
    lower: keys.Key | None
    upper: keys.Key
    rows: int


@dataclass(frozen=True)
class TablePlan:
    """What one run of one table will extract."""

    lower_key: keys.Key | None
    upper_key: keys.Key | None
    bound: str | None
    chunks: list[Chunk]
    null_cursor_rows: int

    @property
    def planned_rows(self) -> int:
        return sum(chunk.rows for chunk in self.chunks)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form for the state machine payload."""
        return {
            "lower_key": self.lower_key,
            "upper_key": self.upper_key,
            "bound": self.bound,
            "chunk_count": len(self.chunks),
            "planned_rows": self.planned_rows,
            "null_cursor_rows": self.null_cursor_rows,
            "chunks": [asdict(chunk) for chunk in self.chunks],
        }


def key_columns(columns: list[Column], cursor: str, primary_key: list[str]) -> list[str]:
    """The order key's columns, checked against the table's columns."""
    names = {c.source_name for c in columns}
    missing = [name for name in [cursor, *primary_key] if name not in names]
    if missing:
        raise SchemaError(f"key column(s) not in the source table: {', '.join(missing)}")
    return [cursor, *[name for name in primary_key if name != cursor]]


def freeze_bound(conn: pymysql.Connection, cursor_type: str, safety_lag_seconds: int) -> str | None:
    """The newest cursor value this run may read (None when the cursor is not a time)."""
    if cursor_type not in TIME_CURSOR_TYPES:
        return None
    # TIMESTAMP values read in our UTC session are UTC; DATETIME values are whatever
    # the application wrote, normally the server's own time zone: compare like with like.
    local_time = cursor_type != "timestamp"
    if local_time:
        query_all(conn, "SET time_zone = @@global.time_zone")
    try:
        (now,) = query_all(conn, "SELECT NOW(6) - INTERVAL %s SECOND", (safety_lag_seconds,))[0]
        oldest = _oldest_open_transaction(conn)
    finally:
        if local_time:
            query_all(conn, "SET time_zone = '+00:00'")
    bound: dt.datetime = now
    if oldest is not None and oldest < bound:
        # A transaction open since `oldest` may still commit rows stamped after it.
        bound = oldest - dt.timedelta(microseconds=1)
    return bound.strftime("%Y-%m-%d %H:%M:%S.%f")


def _oldest_open_transaction(conn: pymysql.Connection) -> dt.datetime | None:
    """Start of the oldest open InnoDB transaction but ours; None if unreadable."""
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT MIN(trx_started) FROM information_schema.innodb_trx "
                "WHERE trx_mysql_thread_id <> CONNECTION_ID()"
            )
            row = cursor.fetchone()
    except pymysql.MySQLError:
        # Without the PROCESS privilege the safety lag alone protects the bound.
        return None
    return row[0] if row and isinstance(row[0], dt.datetime) else None


def count_null_cursor(conn: pymysql.Connection, database: str, table: str, cursor: str) -> int:
    """Rows whose cursor is NULL: never synced silently, always reported."""
    sql = (
        f"SELECT COUNT(*) FROM {quote_mysql_table(database, table)} "  # noqa: S608 (quoted)
        f"WHERE {quote_mysql(cursor)} IS NULL"
    )
    return int(query_all(conn, sql)[0][0])


def cut_chunks(
    conn: pymysql.Connection,
    database: str,
    table: str,
    key_cols: list[str],
    lower: keys.Key | None,
    bound: str | None,
    limit: int,
    max_chunks: int | None,
) -> list[Chunk]:
    """Chunks of `limit` rows after `lower` up to `bound`; at most `max_chunks` of them.

    One query numbers the keys in order and keeps every `limit`-th one and the last,
    so the boundaries cost one index scan of the range.
    """
    where, params = keys.key_range(key_cols, lower, None)
    if bound is not None:
        where += f" AND {quote_mysql(key_cols[0])} <= %s"
        params.append(bound)
    aliases = [f"k{i}" for i in range(len(key_cols))]
    select = ", ".join(f"{quote_mysql(c)} AS {a}" for c, a in zip(key_cols, aliases, strict=True))
    sql = (
        f"SELECT {', '.join(aliases)}, rn FROM ("  # noqa: S608 (identifiers quoted)
        f"SELECT {select}, ROW_NUMBER() OVER (ORDER BY {keys.order_by(key_cols)}) AS rn, "
        f"COUNT(*) OVER () AS total "
        f"FROM {quote_mysql_table(database, table)} WHERE {where}"
        f") AS numbered WHERE MOD(rn, %s) = 0 OR rn = total ORDER BY rn"
    )
    params.append(limit)
    if max_chunks is not None:
        sql += " LIMIT %s"
        params.append(max_chunks)
    chunks: list[Chunk] = []
    previous_key, previous_rn = lower, 0
    for row in query_all(conn, sql, params):
        upper, rn = keys.to_key(row[:-1]), int(row[-1])
        chunks.append(Chunk(len(chunks), previous_key, upper, rn - previous_rn))
        previous_key, previous_rn = upper, rn
    return chunks


def plan_table(
    conn: pymysql.Connection,
    *,
    database: str,
    table: str,
    columns: list[Column],
    cursor: str,
    primary_key: list[str],
    lower: keys.Key | None,
    limit: int,
    max_chunks: int | None,
    safety_lag_seconds: int,
) -> TablePlan:
    """Plan one run: freeze the bound, count NULL cursors, cut the chunks."""
    key_cols = key_columns(columns, cursor, primary_key)
    cursor_type = next(c.data_type for c in columns if c.source_name == cursor)
    bound = freeze_bound(conn, cursor_type, safety_lag_seconds)
    null_rows = count_null_cursor(conn, database, table, cursor)
    chunks = cut_chunks(conn, database, table, key_cols, lower, bound, limit, max_chunks)
    upper = chunks[-1].upper if chunks else lower
    return TablePlan(lower, upper, bound, chunks, null_rows)
