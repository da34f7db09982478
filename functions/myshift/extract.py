"""Extracting one chunk: stream its key range from MySQL into a Parquet file on S3.

Rows come from an unbuffered (server-side) cursor in batches and are written as
Parquet row groups, so memory depends on the batch size, not the chunk size. The
object key is deterministic (pipeline, table, run, chunk): a retried chunk overwrites
its own file and never adds a second one.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq
import pymysql
import pymysql.cursors
from botocore.exceptions import BotoCoreError, ClientError

from myshift import keys
from myshift.errors import StorageUnavailableError
from myshift.identifiers import quote_mysql_table
from myshift.schema import Column, ConversionReport, arrow_schema, select_list, to_record_batch
from myshift.source import classify

DEFAULT_BATCH_ROWS = 20_000


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
    upper: keys.Key,
) -> tuple[str, list]:
    """The SELECT of one chunk: `lower < key <= upper ORDER BY key`."""
    where, params = keys.key_range(key_cols, lower, upper)
    sql = (
        f"SELECT {select_list(columns)} FROM {quote_mysql_table(database, table)} "  # noqa: S608
        f"WHERE {where} ORDER BY {keys.order_by(key_cols)}"
    )
    return sql, params


def extract_chunk(
    conn: pymysql.Connection,
    s3: Any,
    *,
    bucket: str,
    s3_key: str,
    index: int,
    database: str,
    table: str,
    columns: list[Column],
    key_cols: list[str],
    lower: keys.Key | None,
    upper: keys.Key,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> ChunkResult:
    """Read the chunk's rows, write them as Parquet (zstd) and upload the file."""
    sql, params = chunk_query(database, table, columns, key_cols, lower, upper)
    schema = arrow_schema(columns)
    key_positions = [next(i for i, c in enumerate(columns) if c.source_name == k) for k in key_cols]
    report = ConversionReport({}, {})
    rows = 0
    last_row: tuple | None = None
    with tempfile.TemporaryDirectory(prefix="myshift-") as workdir:
        path = os.path.join(workdir, "chunk.parquet")
        # Dictionary encoding costs time and space on high-cardinality text (DESIGN.md).
        with pq.ParquetWriter(path, schema, compression="zstd", use_dictionary=False) as writer:
            try:
                with conn.cursor(pymysql.cursors.SSCursor) as cursor:
                    cursor.execute(sql, params)
                    while batch := cursor.fetchmany(batch_rows):
                        record_batch, batch_report = to_record_batch(columns, batch)
                        writer.write_batch(record_batch)
                        report.merge(batch_report)
                        rows += len(batch)
                        last_row = batch[-1]
            except pymysql.MySQLError as exc:
                raise classify(exc, f"{conn.host}:{conn.port}") from None
        size = os.path.getsize(path)
        try:
            s3.upload_file(path, bucket, s3_key)
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailableError(f"S3 upload of {s3_key}: {exc}".splitlines()[0]) from None
    last_key = keys.to_key([last_row[i] for i in key_positions]) if last_row else None
    return ChunkResult(index, s3_key, rows, size, last_key, report)
