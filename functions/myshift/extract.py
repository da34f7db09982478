"""Extracting one chunk: stream its key range from MySQL into a Parquet file on S3.

Rows are streamed from the server unbuffered, in batches, and written as Parquet row
groups, so memory depends on the batch size, not the chunk size. The object key is
deterministic (pipeline, table, run, chunk): a retried chunk overwrites its own file
and never adds a second one.

Two readers give the same Parquet file:
- `text` (the default): the server builds one CSV line per row, the lines are read off
  the socket in blocks and Arrow's CSV reader parses a batch at once, outside the GIL
  (see `schema.csv_line_sql`, `source.stream_lines`). Several times faster than `rows`.
- `rows`: pymysql's unbuffered cursor with its converters, converted a column at a time.
  Used for a chunk holding a row too large for the server to build as one line (over
  max_allowed_packet), and selectable per table as the plain reference.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
import pymysql
import pymysql.cursors
from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError

from myshift import keys
from myshift.clients import S3Client
from myshift.errors import StorageUnavailableError
from myshift.identifiers import quote_mysql, quote_mysql_table
from myshift.mysql_types import Family
from myshift.schema import (
    PARQUET_COMPRESSION,
    Column,
    ConversionReport,
    csv_line_sql,
    file_schema,
    parse_csv_lines,
    select_list,
    to_record_batch,
)
from myshift.source import OversizeRowError, classify, stream_lines

DEFAULT_BATCH_ROWS = 20_000
Reader = Literal["text", "rows"]


def table_prefix(data_prefix: str, pipeline: str, table: str) -> str:
    """S3 prefix of every file of one table of one pipeline."""
    database, name = table.split(".")
    return f"{data_prefix}/{pipeline}/{database}/{name}/"


def chunk_object_key(data_prefix: str, pipeline: str, table: str, run_id: str, index: int) -> str:
    """Deterministic S3 key of one chunk's Parquet file."""
    return f"{table_prefix(data_prefix, pipeline, table)}run={run_id}/chunk-{index:05d}.parquet"


@dataclass
class ChunkResult:
    """What one chunk extraction wrote."""

    index: int
    s3_key: str
    rows: int
    bytes: int
    last_key: keys.Key | None
    report: ConversionReport = field(default_factory=lambda: ConversionReport({}, {}))

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "s3_key": self.s3_key,
            "rows": self.rows,
            "bytes": self.bytes,
            "last_key": self.last_key,
            "report": self.report.as_dict(),
        }


def chunk_query(
    database: str,
    table: str,
    columns: list[Column],
    key_cols: list[str],
    lower: keys.Key | None,
    upper: keys.Key | None,
    reader: Reader = "rows",
    *,
    include_null_cursor: bool = False,
    order_index: str | None = None,
    named: tuple[list[str], list[keys.Key]] | None = None,
) -> keys.Predicate:
    """The SELECT of one chunk: `lower < key <= upper ORDER BY key`.

    `reader="rows"` selects the columns, `reader="text"` one CSV line per row. With
    `include_null_cursor` rows with a NULL cursor sort first (`keys.null_cursor_range`).
    `order_index` (`plan.order_index`) is forced: the rows stream in its order, never
    through a full scan and a sort. `named` (primary key columns, keys) reads those
    rows instead of a range (a reconciliation's fix): found by the primary key.
    """
    if named is not None:
        where, params = keys.any_of(*named)
        order_index = None  # a few hundred rows by key, sorted in memory
    else:
        where, params = keys.key_range(
            key_cols, lower, upper, include_null_cursor=include_null_cursor
        )
    select = csv_line_sql(columns) if reader == "text" else select_list(columns)
    hint = f" FORCE INDEX ({quote_mysql(order_index)})" if order_index else ""
    sql = (
        f"SELECT {select} FROM {quote_mysql_table(database, table)}{hint} "  # noqa: S608
        f"WHERE {where} ORDER BY {keys.order_by(key_cols)}"
    )
    return sql, params


def _key_value(col: Column, value: Any) -> Any:
    """A Parquet value of a key column as pymysql would have given it."""
    if isinstance(value, Decimal) and col.family in (Family.INTEGER, Family.BIT):
        return int(value)  # BIGINT UNSIGNED and BIT(64) are decimal128(20,0) in Parquet
    return value


def _last_key(columns: list[Column], table: pa.Table, key_positions: list[int]) -> keys.Key:
    last = table.slice(table.num_rows - 1, 1)
    return keys.to_key([_key_value(columns[i], last.column(i)[0].as_py()) for i in key_positions])


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = object()


def _prefetched(
    lines: Generator[tuple[bytes, int], None, None], depth: int = 1
) -> Generator[Any, None, None]:
    """`lines` read on a thread of its own, at most `depth` batches ahead.

    The next batch comes off the socket while this one is parsed and written (Arrow
    releases the GIL), so a chunk takes about the longer of the two, not their sum;
    memory stays bounded at `depth + 2` batches. Errors of the reader are raised here.
    If the consumer stops early, the reader is stopped (closing `lines` closes its
    connection) and waited for, so the connection is never used by two threads.
    """
    batches: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def read() -> None:
        try:
            for batch in lines:
                batches.put(batch)
                if stop.is_set():
                    break
        except BaseException as exc:  # handed to the consumer
            batches.put(_Failed(exc))
            return
        finally:
            lines.close()
        batches.put(_END)

    reader = threading.Thread(target=read, name="myshift-reader", daemon=True)
    reader.start()
    try:
        while True:
            item = batches.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()
        while reader.is_alive():  # unblock a reader waiting to put
            try:
                batches.get(timeout=0.05)
            except queue.Empty:
                pass
        reader.join()


# One batch of a chunk: its rows (Arrow), their conversion report, the key of its last row.
Batch = tuple[pa.Table | pa.RecordBatch, ConversionReport, keys.Key]


def _text_batches(
    conn: pymysql.Connection,
    sql: str,
    params: list[Any],
    columns: list[Column],
    key_positions: list[int],
    batch_rows: int,
) -> Generator[Batch, None, None]:
    """The `text` reader: server-built lines off the socket, parsed by Arrow per batch."""
    with closing(_prefetched(stream_lines(conn, sql, params, batch_rows))) as batches:
        for lines, count in batches:
            table, report = parse_csv_lines(columns, lines, count)
            del lines  # freed before the next batch is read, not after
            yield table, report, _last_key(columns, table, key_positions)


def _row_batches(
    conn: pymysql.Connection,
    sql: str,
    params: list[Any],
    columns: list[Column],
    key_positions: list[int],
    batch_rows: int,
) -> Generator[Batch, None, None]:
    """The `rows` reader: pymysql's unbuffered cursor, converted a column at a time."""
    with conn.cursor(pymysql.cursors.SSCursor) as cursor:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(batch_rows):
            record_batch, report = to_record_batch(columns, batch)
            # The key as pymysql gave it: the values the next chunk's bounds compare with.
            yield record_batch, report, keys.to_key([batch[-1][i] for i in key_positions])


def parquet_writer(path: str, columns: list[Column]) -> pq.ParquetWriter:
    """A writer of a file as every myshift file is written (the canary's too)."""
    # Dictionary encoding costs time and space on high-cardinality text (DESIGN.md).
    return pq.ParquetWriter(
        path, file_schema(columns), compression=PARQUET_COMPRESSION, use_dictionary=False
    )


def upload(s3: S3Client, path: str, bucket: str, s3_key: str) -> None:
    """Upload a written file; S3 errors are StorageUnavailableError (transient)."""
    try:
        s3.upload_file(path, bucket, s3_key)
    except (ClientError, BotoCoreError, S3UploadFailedError) as exc:
        raise StorageUnavailableError(f"S3 upload of {s3_key}: {exc}".splitlines()[0]) from None


def write_table(
    s3: S3Client, *, bucket: str, s3_key: str, columns: list[Column], table: Any
) -> int:
    """Write rows already converted (`schema.to_record_batch`) as one file; its size."""
    with tempfile.TemporaryDirectory(prefix="myshift-") as workdir:
        path = os.path.join(workdir, "file.parquet")
        with parquet_writer(path, columns) as writer:
            writer.write_table(table.cast(file_schema(columns)))
        size = os.path.getsize(path)
        upload(s3, path, bucket, s3_key)
    return size


def _write_parquet(
    conn: pymysql.Connection,
    path: str,
    reader: Reader,
    query: keys.Predicate,
    columns: list[Column],
    key_positions: list[int],
    batch_rows: int,
) -> tuple[int, keys.Key | None, ConversionReport]:
    report = ConversionReport({}, {})
    read = _text_batches if reader == "text" else _row_batches
    rows = 0
    last_key: keys.Key | None = None
    schema = file_schema(columns)
    with parquet_writer(path, columns) as writer:
        try:
            # closing: if writing fails, the reader stops (and lets go of the connection)
            # now, not when the traceback is collected.
            with closing(read(conn, *query, columns, key_positions, batch_rows)) as batches:
                for data, batch_report, batch_last_key in batches:
                    writer.write(data.cast(schema))  # zero copy: the same values
                    report.merge(batch_report)
                    rows += data.num_rows
                    last_key = batch_last_key
        except pymysql.MySQLError as exc:
            raise classify(exc, f"{conn.host}:{conn.port}") from None
    return rows, last_key, report


def extract_chunk(
    conn: pymysql.Connection,
    s3: S3Client,
    *,
    bucket: str,
    s3_key: str,
    index: int,
    database: str,
    table: str,
    columns: list[Column],
    key_cols: list[str],
    lower: keys.Key | None,
    upper: keys.Key | None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    reader: Reader = "text",
    include_null_cursor: bool = False,
    order_index: str | None = None,
    named: tuple[list[str], list[keys.Key]] | None = None,
) -> ChunkResult:
    """Read the chunk's rows, write them as Parquet (SNAPPY) and upload the file.

    `named`: the rows of these primary keys instead of the range (`chunk_query`)."""
    key_positions = [next(i for i, c in enumerate(columns) if c.source_name == k) for k in key_cols]

    def query(reader: Reader) -> keys.Predicate:
        return chunk_query(
            database,
            table,
            columns,
            key_cols,
            lower,
            upper,
            reader,
            include_null_cursor=include_null_cursor,
            order_index=order_index,
            named=named,
        )

    with tempfile.TemporaryDirectory(prefix="myshift-") as workdir:
        path = os.path.join(workdir, "chunk.parquet")
        try:
            rows, last_key, report = _write_parquet(
                conn, path, reader, query(reader), columns, key_positions, batch_rows
            )
        except OversizeRowError:
            # A row too large for one server-built line: this chunk the slow way. The
            # text reader closed the connection (the rest of the result was unread).
            try:
                conn.connect()
            except pymysql.MySQLError as exc:
                raise classify(exc, f"{conn.host}:{conn.port}") from None
            rows, last_key, report = _write_parquet(
                conn, path, "rows", query("rows"), columns, key_positions, batch_rows
            )
        size = os.path.getsize(path)
        upload(s3, path, bucket, s3_key)
    return ChunkResult(index, s3_key, rows, size, last_key, report)
