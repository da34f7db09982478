"""Planning one table's run: freeze the upper bound, cut chunks on the order key.

The bound is frozen once, before any chunk is read, so every chunk and the load see
the same rows: not later than the source's `NOW() - safety_lag`, and not later than
the start of the oldest open transaction (a row it writes may carry an earlier
timestamp and commit after we read past it).

Chunk boundaries are cut before any chunk is read, so chunks can be extracted in
parallel. Two ways, one result (a test checks they agree):
- `seek` (the default when an index starts with the cursor column): per chunk, the key
  `limit` rows further along the index (`ORDER BY key LIMIT 1 OFFSET limit-1`), all in
  one read-only snapshot. Each query walks `limit` entries of the covering index, so a
  run costs one scan of the keys it will extract: measured on MariaDB 10.11 with 1M
  rows, 0.16 s against 1.0 s for the window query, and with `--max-chunks` it reads
  only the keys of the chunks it plans. Given a second connection, a run to the bound
  (no `--max-chunks`) walks from both ends at once, each end in its own snapshot, and
  the two meet in one shorter middle chunk: half the time on a server with two cores
  free (`_cut_from_both_ends`).
- `window`: one query numbering every key up to the bound (`ROW_NUMBER() OVER`), one
  sort whatever the indexes; used when no index starts with the cursor. A server
  without window functions (MySQL 5.7, MariaDB < 10.2) answers it with a syntax
  error, and the plan falls back to `seek`.

The key must identify a row: `check_key` refuses, before anything runs, a key that is
not the PRIMARY KEY or a UNIQUE index of NOT NULL columns.

Rows whose cursor is NULL are counted every run (`null_cursor_rows`). A table with
`load_null_cursor` orders them before every other row, by the primary key alone
(`keys.null_cursor_range`): the watermark passes through them once, so each is loaded
exactly once, in the first run(s) after a reset, in chunks like any other rows.
NULL-cursor rows that appear after the watermark has left them behind cannot be told
from old ones (there is no cursor to see them by): they are in the count, and a reset
loads them.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any

import pymysql

from myshift import keys
from myshift.errors import MyshiftError, SchemaError
from myshift.identifiers import quote_mysql, quote_mysql_table
from myshift.schema import Column
from myshift.source import Row, classify, query_all


@dataclass(frozen=True)
class Chunk:
    """One slice of the run: rows with `lower < key <= upper` (lower None: from the start)."""

    index: int
    lower: keys.Key | None
    upper: keys.Key | None  # None: open-ended (a full refresh's last chunk)
    rows: int


@dataclass(frozen=True)
class TablePlan:
    """What one run of one table will extract."""

    lower_key: keys.Key | None
    upper_key: keys.Key | None
    bound: str | None
    chunks: list[Chunk]
    null_cursor_rows: int
    chunking: str = "seek"
    load_null_cursor: bool = False
    order_index: str | None = None

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
            "load_null_cursor": self.load_null_cursor,
            "chunking": self.chunking,
            "order_index": self.order_index,
            "chunks": [asdict(chunk) for chunk in self.chunks],
        }


# Chunk sizing when neither the run (`limit`) nor the pipeline file (`chunk_rows`) sets
# the rows per chunk (`choose_chunk_rows`, measured with `make bench`, bench/cli_sync.py):
# - enough chunks for every concurrent extraction to have CHUNK_WAVES of them, no more:
#   each chunk costs an invocation, state transitions, DynamoDB items and a file, and a
#   chunk's memory does not grow with its rows (rows are read a batch at a time); sized
#   for CHUNK_ESTIMATE_HEADROOM times the estimate, as InnoDB's TABLE_ROWS is a sample's
#   guess: one a little low (990,000 for 1,000,000 rows) would otherwise leave a sliver
#   of a chunk (10,000 rows) for one more round after the others (measured on 2 shared
#   CPUs, 1,000,000 rows, 2 at a time: 495,000 + 495,000 + 10,000 rows 7.6-8.2 s,
#   500,000 x 2 4.9-7.0 s, 550,000 + 450,000 5.8-8.2 s);
# - at most CHUNK_MAX_SOURCE_BYTES of source rows (InnoDB's AVG_ROW_LENGTH) a chunk: its
#   Parquet file is written to the extract function's /tmp (512 MB) before upload, and
#   is no larger than the rows it holds even when their values do not compress;
# - at least CHUNK_MIN_ROWS rows (below that a chunk's fixed cost dominates), unless the
#   byte limit says fewer; at most CHUNK_MAX_ROWS (the largest chunk_rows a file may set).
# A table without statistics (TABLE_ROWS 0: empty, or never analyzed) gets
# CHUNK_ROWS_UNKNOWN_SIZE. The estimate is the whole table's: an incremental run that
# reads a few new rows reads them in one chunk, as it did with fixed chunk_rows.
CHUNK_WAVES = 1
CHUNK_ESTIMATE_HEADROOM = 1.1
CHUNK_MAX_SOURCE_BYTES = 256 * 1024 * 1024
CHUNK_MIN_ROWS = 50_000
CHUNK_MAX_ROWS = 10_000_000
CHUNK_ROWS_UNKNOWN_SIZE = 250_000
CHUNK_ROWS_ROUNDING = 1_000
TABLE_SIZE_QUERY = (
    "SELECT TABLE_ROWS, AVG_ROW_LENGTH, DATA_LENGTH FROM information_schema.TABLES "
    "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s"
)


@dataclass(frozen=True)
class TableSize:
    """The server's estimate of a table's size (information_schema.TABLES)."""

    rows: int
    avg_row_bytes: int


def table_size(conn: pymysql.Connection, database: str, table: str) -> TableSize:
    """TABLE_ROWS and AVG_ROW_LENGTH (or DATA_LENGTH / TABLE_ROWS); zeros when unknown."""
    found = query_all(conn, TABLE_SIZE_QUERY, (database, table))
    if not found:
        return TableSize(0, 0)
    rows, avg, data = (int(value or 0) for value in found[0])
    return TableSize(rows, avg or (data // rows if rows else 0))


def choose_chunk_rows(size: TableSize, concurrency: int) -> int:
    """Rows per chunk for a table of `size` extracted `concurrency` chunks at a time
    (the rule is above CHUNK_WAVES)."""
    if size.rows <= 0:
        return CHUNK_ROWS_UNKNOWN_SIZE
    by_bytes = max(1, CHUNK_MAX_SOURCE_BYTES // max(size.avg_row_bytes, 1))
    chunks = max(1, concurrency) * CHUNK_WAVES
    to_fill = math.ceil(size.rows * CHUNK_ESTIMATE_HEADROOM / chunks)
    to_fill = -(-to_fill // CHUNK_ROWS_ROUNDING) * CHUNK_ROWS_ROUNDING
    chosen = max(min(to_fill, by_bytes), min(CHUNK_MIN_ROWS, by_bytes))
    return min(chosen, CHUNK_MAX_ROWS)


@dataclass(frozen=True)
class ChunkSizing:
    """A run's rows per chunk and where they came from: `setting` (the run's limit or the
    pipeline's chunk_rows) or `table` (`choose_chunk_rows`)."""

    chunk_rows: int
    chunk_rows_from: str
    size: TableSize | None = None  # the estimate it was chosen from


def chunk_sizing(
    conn: pymysql.Connection, database: str, table: str, limit: int | None, concurrency: int
) -> ChunkSizing:
    """The run's `limit` (the run's or the pipeline's), else a size chosen from the table."""
    if limit is not None:
        return ChunkSizing(limit, "setting")
    size = table_size(conn, database, table)
    return ChunkSizing(choose_chunk_rows(size, concurrency), "table", size)


def key_columns(columns: list[Column], cursor: str, primary_key: list[str]) -> list[str]:
    """The order key's columns, checked against the table's columns."""
    names = {c.source_name for c in columns}
    missing = [name for name in [cursor, *primary_key] if name not in names]
    if missing:
        raise SchemaError(f"key column(s) not in the source table: {', '.join(missing)}")
    return [cursor, *[name for name in primary_key if name != cursor]]


INDEXES_QUERY = (
    "SELECT s.INDEX_NAME AS INDEX_NAME, s.NON_UNIQUE AS NON_UNIQUE, "
    "s.COLUMN_NAME AS COLUMN_NAME, c.IS_NULLABLE AS IS_NULLABLE "
    "FROM information_schema.STATISTICS s JOIN information_schema.COLUMNS c "
    "ON c.TABLE_SCHEMA = s.TABLE_SCHEMA AND c.TABLE_NAME = s.TABLE_NAME "
    "AND c.COLUMN_NAME = s.COLUMN_NAME "
    "WHERE s.TABLE_SCHEMA = %s AND s.TABLE_NAME = %s "
    "ORDER BY s.INDEX_NAME, s.SEQ_IN_INDEX"
)


@dataclass(frozen=True)
class Index:
    """One index of the source table, from information_schema.STATISTICS."""

    name: str
    unique: bool
    columns: list[str]
    nullable: list[str]

    @property
    def is_key(self) -> bool:
        """PRIMARY, or UNIQUE over NOT NULL columns (NULLs are never equal to each other)."""
        return self.unique and not self.nullable

    def describe(self) -> str:
        kind = "PRIMARY KEY" if self.name == "PRIMARY" else f"UNIQUE {self.name}"
        return f"{kind} ({', '.join(self.columns)})"


def table_indexes(conn: pymysql.Connection, database: str, table: str) -> list[Index]:
    """The table's indexes, PRIMARY first."""
    by_name: dict[str, Index] = {}
    for name, non_unique, column, nullable in query_all(conn, INDEXES_QUERY, (database, table)):
        index = by_name.setdefault(str(name), Index(str(name), int(non_unique) == 0, [], []))
        index.columns.append(str(column))
        if str(nullable).upper() == "YES":
            index.nullable.append(str(column))
    return sorted(by_name.values(), key=lambda i: (i.name != "PRIMARY", i.name))


def check_key(
    indexes: list[Index], qualified: str, key: list[str], key_source: str = "primary_key"
) -> None:
    """SchemaError unless `key` is the PRIMARY KEY or a UNIQUE index of NOT NULL columns.

    Without such a key two rows cannot be told apart, and no run could promise to load
    each exactly once. `key_source` names the setting the key came from.
    """
    wanted = sorted(c.lower() for c in key)
    keys_found = [i for i in indexes if i.is_key]
    primary = next((i for i in indexes if i.name == "PRIMARY"), None)
    if not keys_found:
        raise SchemaError(
            f"{qualified} has no PRIMARY KEY and no UNIQUE index of NOT NULL columns: rows "
            "cannot be told apart, so it cannot be synced exactly once (add a primary key)"
        )
    candidates = "; ".join(i.describe() for i in keys_found)
    if primary is None and key_source == "primary_key":
        raise SchemaError(
            f"{qualified} has no PRIMARY KEY: configure unique_key with the columns of a "
            f"UNIQUE index of NOT NULL columns (it has: {candidates})"
        )
    if any(sorted(c.lower() for c in i.columns) == wanted for i in keys_found):
        return
    nullable = [i for i in indexes if i.unique and sorted(c.lower() for c in i.columns) == wanted]
    why = (
        f"UNIQUE {nullable[0].name} allows NULL in {', '.join(nullable[0].nullable)}"
        if nullable
        else "no such PRIMARY KEY or UNIQUE index"
    )
    raise SchemaError(
        f"{qualified}: {key_source} ({', '.join(key)}) does not identify a row: {why} "
        f"(keys of the table: {candidates})"
    )


def has_cursor_index(indexes: list[Index], cursor: str) -> bool:
    """An index starts with the cursor column (chunk ranges and seeks can use it)."""
    return any(i.columns and i.columns[0].lower() == cursor.lower() for i in indexes)


def order_index(indexes: list[Index], cursor: str, primary_key: list[str]) -> str | None:
    """An index that holds the rows in key order `(cursor, primary key...)`, if any.

    Its columns are the cursor and a prefix of the primary key: InnoDB appends the
    primary key to every secondary index, so `(cursor)` alone qualifies. Chunks are
    read with FORCE INDEX on it: left to itself MariaDB reads a chunk that covers more
    than about a tenth of the table with a full scan and a sort (measured: 4.5 s of
    server CPU instead of 2.6 s for 1M rows in 125,000-row chunks), and the sort of a
    large chunk spills to temporary files on the source.
    """
    wanted = [cursor.lower(), *(c.lower() for c in primary_key)]
    for index in indexes:
        columns = [c.lower() for c in index.columns]
        if columns and columns == wanted[: len(columns)]:
            return index.name
    return None


def freeze_bound(conn: pymysql.Connection, cursor: Column, safety_lag_seconds: int) -> str | None:
    """The newest cursor value this run may read (None when the cursor is not a time).

    InnoDB serves information_schema.innodb_trx from a cache refreshed at most every
    0.1 s: a transaction younger than that may be missed. Its rows are stamped after
    `NOW() - safety_lag` for any lag of a second or more (the default is 5 s).
    """
    if not cursor.family.is_date:
        return None
    # TIMESTAMP values read in our UTC session are UTC; DATETIME values are whatever
    # the application wrote, normally the server's own time zone: compare like with like.
    local_time = not cursor.type.utc
    if local_time:
        query_all(conn, "SET time_zone = @@global.time_zone")
    try:
        (now,) = query_all(conn, "SELECT NOW(6) - INTERVAL %s SECOND", (safety_lag_seconds,))[0]
        oldest = _oldest_open_transaction(conn)
    finally:
        if local_time:
            query_all(conn, "SET time_zone = '+00:00'")
    bound: dt.datetime = now
    if oldest is not None and oldest - dt.timedelta(seconds=1) < bound:
        # A transaction open since `oldest` may still commit rows stamped after it.
        # trx_started has whole seconds, and a statement's NOW() may precede its
        # transaction's start: one second more covers both.
        bound = oldest - dt.timedelta(seconds=1)
    return bound.strftime("%Y-%m-%d %H:%M:%S.%f")


def _oldest_open_transaction(conn: pymysql.Connection) -> dt.datetime | None:
    """Start of the oldest open InnoDB transaction that has written rows; None if unreadable.

    A transaction that has written nothing yet stamps its future rows with a later
    NOW(): only writers can commit rows older than the bound. (Idle read-only
    transactions, common behind connection pools, would otherwise stall every table.)
    """
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT MIN(trx_started) FROM information_schema.innodb_trx "
                "WHERE trx_mysql_thread_id <> CONNECTION_ID() AND trx_rows_modified > 0"
            )
            row = cursor.fetchone()
    except pymysql.MySQLError:
        # Without the PROCESS privilege the safety lag alone protects the bound.
        return None
    return row[0] if row and isinstance(row[0], dt.datetime) else None


def count_null_cursor(conn: pymysql.Connection, database: str, table: str, cursor: str) -> int:
    """Rows whose cursor is NULL: never synced silently, always reported."""
    return _count(conn, quote_mysql_table(database, table), f"{quote_mysql(cursor)} IS NULL", [])


def _bounded(
    key_cols: list[str],
    lower: keys.Key | None,
    bound: str | None,
    include_null_cursor: bool,
) -> keys.Predicate:
    """`key > lower` and `cursor <= bound` (NULL cursors too when they are loaded)."""
    where, params = keys.key_range(key_cols, lower, None, include_null_cursor=include_null_cursor)
    if bound is not None:
        cursor = quote_mysql(key_cols[0])
        null_ok = f"{cursor} IS NULL OR " if include_null_cursor else ""
        where += f" AND ({null_ok}{cursor} <= %s)"
        params.append(bound)
    return where, params


def window_sql(qualified: str, key_cols: list[str], where: str) -> str:
    """The window query: every `limit`-th key (the last parameter) and the last key."""
    aliases = [f"k{i}" for i in range(len(key_cols))]
    select = ", ".join(f"{quote_mysql(c)} AS {a}" for c, a in zip(key_cols, aliases, strict=True))
    return (
        f"SELECT {', '.join(aliases)}, rn FROM ("  # noqa: S608 (identifiers quoted)
        f"SELECT {select}, ROW_NUMBER() OVER (ORDER BY {keys.order_by(key_cols)}) AS rn, "
        f"COUNT(*) OVER () AS total "
        f"FROM {qualified} WHERE {where}"
        f") AS numbered WHERE MOD(rn, %s) = 0 OR rn = total ORDER BY rn"
    )


def _cut_by_window(
    conn: pymysql.Connection,
    qualified: str,
    key_cols: list[str],
    where: str,
    params: list[Any],
    lower: keys.Key | None,
    limit: int,
    max_chunks: int | None,
) -> list[Chunk]:
    """One query numbers the keys in order and keeps every `limit`-th one and the last."""
    sql = window_sql(qualified, key_cols, where)
    params = [*params, limit]
    if max_chunks is not None:
        sql += " LIMIT %s"
        params.append(max_chunks)
    with conn.cursor() as cursor:  # errors are classified by the caller
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    chunks: list[Chunk] = []
    previous_key, previous_rn = lower, 0
    for row in rows:
        upper, rn = keys.to_key(row[:-1]), int(row[-1])
        chunks.append(Chunk(len(chunks), previous_key, upper, rn - previous_rn))
        previous_key, previous_rn = upper, rn
    return chunks


def _key_at(
    conn: pymysql.Connection,
    qualified: str,
    key_cols: list[str],
    where: str,
    params: list[Any],
    *,
    offset: int = 0,
    descending: bool = False,
) -> Row | None:
    """The key `offset` rows into the rows matching `where`, in key order (or from the
    top): one seek along the index, or None when fewer rows match."""
    select = ", ".join(quote_mysql(c) for c in key_cols)
    rows = query_all(
        conn,
        f"SELECT {select} FROM {qualified} WHERE {where} "  # noqa: S608 (quoted)
        f"ORDER BY {keys.order_by(key_cols, descending=descending)} LIMIT 1 OFFSET %s",
        [*params, offset],
    )
    return tuple(rows[0]) if rows else None


def _count(conn: pymysql.Connection, qualified: str, where: str, params: list[Any]) -> int:
    """How many rows match `where`."""
    sql = f"SELECT COUNT(*) FROM {qualified} WHERE {where}"  # noqa: S608 (quoted)
    return int(query_all(conn, sql, params)[0][0])


def _cut_by_seek(
    conn: pymysql.Connection,
    qualified: str,
    key_cols: list[str],
    lower: keys.Key | None,
    bound: str | None,
    limit: int,
    max_chunks: int | None,
    include_null_cursor: bool,
) -> list[Chunk]:
    """Per chunk, the key `limit` rows on; the last chunk ends at the last key."""
    chunks: list[Chunk] = []
    previous = lower
    while max_chunks is None or len(chunks) < max_chunks:
        where, params = _bounded(key_cols, previous, bound, include_null_cursor)
        found = _key_at(conn, qualified, key_cols, where, params, offset=limit - 1)
        if found is not None:
            upper = keys.to_key(found)
            if upper == previous:  # a key that compares equal to itself: never loop
                raise SchemaError(f"{qualified}: the key {upper} does not order the rows")
            chunks.append(Chunk(len(chunks), previous, upper, limit))
            previous = upper
            continue
        # Fewer than `limit` rows are left: one last, shorter chunk (if any).
        count = _count(conn, qualified, where, params)
        last = _key_at(conn, qualified, key_cols, where, params, descending=True) if count else None
        if last is not None:
            chunks.append(Chunk(len(chunks), previous, keys.to_key(last), count))
        break
    return chunks


@contextmanager
def read_only_snapshot(conn: pymysql.Connection) -> Iterator[None]:
    """A read-only REPEATABLE READ transaction with its snapshot taken now.

    Committed at the end, rolled back on an error (where the connection is gone, so is
    the transaction).
    """
    query_all(conn, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    query_all(conn, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
    try:
        yield
    except BaseException:
        try:
            query_all(conn, "ROLLBACK")
        except MyshiftError:
            pass
        raise
    query_all(conn, "COMMIT")


class _Frontier:
    """How far each end of a two-ended walk has come (raw key values), shared."""

    def __init__(self, top: Row) -> None:
        self._lock = threading.Lock()
        self.front: Row | None = None  # not yet moved from the lower end
        self.back: Row = top
        self.stopped = False

    def read(self) -> tuple[Row | None, Row]:
        with self._lock:
            return self.front, self.back

    def advance(self, *, front: Row | None = None, back: Row | None = None) -> None:
        with self._lock:
            if front is not None:
                self.front = front
            if back is not None:
                self.back = back


def _walk_forward(
    conn: pymysql.Connection,
    qualified: str,
    key_cols: list[str],
    frontier: _Frontier,
    lower: keys.Key | None,
    limit: int,
) -> list[Row]:
    """Keys every `limit` rows from the lower end, never past the other end's keys."""
    found: list[Row] = []
    previous = lower
    while not frontier.stopped:
        _, back = frontier.read()
        where, params = keys.key_range(key_cols, previous, keys.to_key(back))
        key = _key_at(conn, qualified, key_cols, where, params, offset=limit - 1)
        if key is None:
            break
        if found and key <= found[-1]:  # a key that does not order the rows: never loop
            raise SchemaError(f"{qualified}: the key {keys.to_key(key)} does not order the rows")
        found.append(key)
        frontier.advance(front=key)
        previous = keys.to_key(key)
        if key == back:
            break
    return found


def _walk_backward(
    conn: pymysql.Connection,
    qualified: str,
    key_cols: list[str],
    frontier: _Frontier,
    lower: keys.Key | None,
    top: Row,
    limit: int,
) -> list[Row]:
    """Keys every `limit` rows down from the top, in a snapshot of its own connection."""
    found: list[Row] = []
    current = top
    with read_only_snapshot(conn):
        while not frontier.stopped:
            front, _ = frontier.read()
            bottom = lower if front is None else keys.to_key(front)
            where, params = keys.key_range(key_cols, bottom, keys.to_key(current))
            key = _key_at(conn, qualified, key_cols, where, params, offset=limit, descending=True)
            if key is None:
                break
            if key >= current:  # a key that does not order the rows: never loop
                raise SchemaError(
                    f"{qualified}: the key {keys.to_key(key)} does not order the rows"
                )
            found.append(key)
            frontier.advance(back=key)
            current = key
    return found


def _cut_from_both_ends(
    conn: pymysql.Connection,
    other: pymysql.Connection,
    qualified: str,
    key_cols: list[str],
    lower: keys.Key | None,
    bound: str | None,
    limit: int,
) -> list[Chunk]:
    """The chunks of a run to the bound, walked from both ends at once.

    The lower end walks up on `conn` (in the caller's snapshot), the top walks down on
    `other`; each step stops short of the other end's latest key. Two steps taken at
    the same moment can still cross, so the merge keeps every key of the lower walk and
    the top walk's keys above its last one. Each chunk holds `limit` rows but the one
    where the walks met: fewer, counted. The chunks tile `lower < key <= last key`
    whatever the snapshots saw, so no row falls between two chunks.
    """
    where, params = _bounded(key_cols, lower, bound, False)
    top = _key_at(conn, qualified, key_cols, where, params, descending=True)
    if top is None:
        return []
    frontier = _Frontier(top)
    with ThreadPoolExecutor(1, thread_name_prefix="myshift-plan") as pool:
        downward = pool.submit(
            _walk_backward, other, qualified, key_cols, frontier, lower, top, limit
        )
        try:
            upward = _walk_forward(conn, qualified, key_cols, frontier, lower, limit)
        except BaseException:
            frontier.stopped = True  # the other end stops after its current step
            raise
        down = downward.result()
    # Ascending boundaries: the lower walk's, then the top walk's above them, then top.
    above = [key for key in [*reversed(down), top] if not upward or key > upward[-1]]
    chunks: list[Chunk] = []
    previous = lower
    for key in upward:
        chunks.append(Chunk(len(chunks), previous, keys.to_key(key), limit))
        previous = keys.to_key(key)
    for position, key in enumerate(above):
        upper = keys.to_key(key)
        if position == 0:  # where the walks met: fewer rows than `limit`, counted
            rows = _count(conn, qualified, *keys.key_range(key_cols, previous, upper))
        else:
            rows = limit
        chunks.append(Chunk(len(chunks), previous, upper, rows))
        previous = upper
    return chunks


_NO_WINDOW_FUNCTIONS = {1064, 1235}  # a syntax error; "this version doesn't yet support"


def cut_chunks(
    conn: pymysql.Connection,
    database: str,
    table: str,
    key_cols: list[str],
    lower: keys.Key | None,
    bound: str | None,
    limit: int,
    max_chunks: int | None,
    *,
    method: str = "seek",
    include_null_cursor: bool = False,
    other: Callable[[], pymysql.Connection] | None = None,
) -> list[Chunk]:
    """Chunks of `limit` rows after `lower` up to `bound`; at most `max_chunks` of them.

    `method` is `seek` or `window` (see the module's doc); `window` falls back to
    `seek` on a server without window functions. The boundaries are read in one
    read-only snapshot, so every chunk's row count is that of one moment; with
    `other` (a second connection, opened when used) a `seek` to the bound walks from
    both ends, in two snapshots (the key's values must order in Python as in MySQL).
    """
    if method not in ("seek", "window"):
        raise ValueError(f"unknown chunking method {method!r}")
    qualified = quote_mysql_table(database, table)
    with read_only_snapshot(conn):
        chunks = None
        if method == "window":
            where, params = _bounded(key_cols, lower, bound, include_null_cursor)
            try:
                chunks = _cut_by_window(
                    conn, qualified, key_cols, where, params, lower, limit, max_chunks
                )
            except pymysql.MySQLError as exc:
                code = exc.args[0] if exc.args else None
                if code not in _NO_WINDOW_FUNCTIONS:
                    raise classify(exc, f"{conn.host}:{conn.port}") from None
        if chunks is None and other is not None and max_chunks is None and not include_null_cursor:
            chunks = _cut_from_both_ends(conn, other(), qualified, key_cols, lower, bound, limit)
        if chunks is None:
            chunks = _cut_by_seek(
                conn, qualified, key_cols, lower, bound, limit, max_chunks, include_null_cursor
            )
    return chunks


def _orders_in_python(columns: list[Column], key_cols: list[str]) -> bool:
    """Whether Python orders the key's values as MySQL does (the type table's families)."""
    by_name = {c.source_name: c for c in columns}
    return all(name in by_name and by_name[name].family.ordered_in_python for name in key_cols)


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
    load_null_cursor: bool = False,
    chunking: str = "auto",
    full_refresh: bool = False,
    indexes: list[Index] | None = None,
    second_connection: Callable[[], pymysql.Connection] | None = None,
) -> TablePlan:
    """Plan one run: freeze the bound, count NULL cursors, cut the chunks.

    `chunking="auto"` seeks along an index that starts with the cursor and numbers the
    keys with a window query otherwise; `indexes` (`table_indexes`) saves reading them
    again where the caller has them. `second_connection` lets a seek to the bound walk
    from both ends when the key's types allow (`cut_chunks`).

    A `full_refresh` (write mode `replace`) has no frozen bound and its last chunk is
    open-ended: the load deletes every row it does not stage, so a row the bound held
    back, or one whose cursor moved past the last planned key while the chunks were
    read, would vanish from the warehouse until the next run. (A row read twice is
    deduplicated by the load.)
    """
    key_cols = key_columns(columns, cursor, primary_key)
    cursor_column = next(c for c in columns if c.source_name == cursor)
    bound = None if full_refresh else freeze_bound(conn, cursor_column, safety_lag_seconds)
    null_rows = count_null_cursor(conn, database, table, cursor)
    if indexes is None:
        indexes = table_indexes(conn, database, table)
    if chunking == "auto":
        chunking = "seek" if has_cursor_index(indexes, cursor) else "window"
    chunks = cut_chunks(
        conn,
        database,
        table,
        key_cols,
        lower,
        bound,
        limit,
        max_chunks,
        method=chunking,
        include_null_cursor=load_null_cursor,
        other=second_connection if _orders_in_python(columns, key_cols) else None,
    )
    upper = chunks[-1].upper if chunks else lower
    if full_refresh and chunks:
        chunks[-1] = replace(chunks[-1], upper=None)
    return TablePlan(
        lower,
        upper,
        bound,
        chunks,
        null_rows,
        chunking,
        load_null_cursor,
        order_index(indexes, cursor, primary_key),
    )
