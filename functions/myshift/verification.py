"""Verification, a step of every run: the warehouse against the source, like for like.

After a table's load (or a run that found nothing new) the workflow compares what the
warehouse holds with what MySQL holds, per range of the primary key:

- A row is *due* when its order key `(cursor, key...)` is at or before the watermark:
  the warehouse must hold it exactly once, in the version MySQL has. A row changed or
  added after the watermark is *newer*: the warehouse may hold an older version of it,
  or none, and neither is a mismatch.
- Per key range (cut by walking the primary key every `verify_range_rows` keys, each
  range read `lower < key <= upper` with the key's index), MySQL gives the count of
  rows due and the sum of a hash of each one's key and cursor (`checksum`: the same
  canonical text on both sides), and the count of newer rows; Redshift the count and
  the same sum of all its rows in the range. A range whose figures agree is verified
  without reading a key.
- The other ranges are narrowed: both sides list the ranges' keys with the hash, and
  each key is classified. Source due, target equal: verified; target differing (another
  cursor value): differing; absent: missing. Source newer: newer. Target only: deleted
  in the source. A key twice in the target: duplicated.

Only missing, duplicated and differing rows are a mismatch. Keys deleted in the source
are removed or marked by the table's `deletes` policy (`delete_statements`) in one
transaction guarded by the table's ledger, as every load.

Limits: text keys are compared by UTF-8 bytes (checksum.py), so their range reads
cannot use the key's index; ranges whose key lists differ are narrowed whole (on a
table changed all over since the bound that is every range: its keys are listed, up to
40 statements a run, the rest left for the next run and reported in `reason`); keys
deleted in the source are applied up to what one batch holds (the next run finds the rest).

Redshift SQL used besides checksum.py's (Amazon Redshift Database Developer Guide):
DELETE https://docs.aws.amazon.com/redshift/latest/dg/r_DELETE.html, UPDATE
https://docs.aws.amazon.com/redshift/latest/dg/r_UPDATE.html, GETDATE
https://docs.aws.amazon.com/redshift/latest/dg/r_GETDATE.html, ALTER TABLE ... ADD COLUMN
(in a transaction block: refused only for external tables)
https://docs.aws.amazon.com/redshift/latest/dg/r_ALTER_TABLE.html.

The ranges' documents travel through S3 (`document_key`), never through the state
machine's payload. The source side runs in the Plan function (it reaches MySQL), the
warehouse side in the Load function (the identity that submits a statement is the one
the Data API lets describe it and read its result).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pymysql

from myshift import checksum, keys, load
from myshift.catalog import source_columns
from myshift.clients import S3Client
from myshift.config import TableConfig
from myshift.errors import LoadError, StorageUnavailableError
from myshift.identifiers import (
    quote_mysql,
    quote_mysql_table,
    quote_redshift,
    quote_redshift_table,
    sql_string,
)
from myshift.schema import Column
from myshift.source import query_all

SOFT_DELETE_COLUMN = "_myshift_deleted_at"
RANGES_PER_SOURCE_QUERY = 100  # one MySQL statement reads at most this many ranges
# The Data API's limits on one batch: 40 statements, 100 KB of SQL each (some left for
# the statements a deletes batch adds).
MAX_STATEMENTS = load.MAX_BATCH_STATEMENTS
MAX_SQL_BYTES = 90 * 1024
DELETE_FIXED_STATEMENTS = 3  # create_ledger, the soft column, ledger


@dataclass
class Verification:
    """A table's verification as the run record keeps it."""

    status: str  # verified | mismatch | skipped
    reason: str | None = None
    verified_rows: int = 0
    newer_rows: int = 0
    deleted_in_source: int = 0
    missing_rows: int = 0
    duplicated_rows: int = 0
    differing_rows: int = 0
    source_rows: int = 0  # rows due in the source (up to the watermark)
    target_rows: int = 0  # rows the warehouse holds in the ranges compared
    ranges: int = 0
    ranges_narrowed: int = 0
    deletes: str = "keep"
    deletes_applied: int = 0

    @property
    def mismatch(self) -> bool:
        return self.missing_rows + self.duplicated_rows + self.differing_rows > 0

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def skipped(reason: str, deletes: str = "keep") -> Verification:
    """A run that verifies nothing (backup only, append, nothing loaded yet)."""
    return Verification(status="skipped", reason=reason, deletes=deletes)


def document_key(data_prefix: str, pipeline: str, table: str, run_id: str, name: str) -> str:
    """Where a run's verification documents live: under the data prefix, the only part
    of the bucket the functions may write (removed when the run ends; a lifecycle rule
    expires what a failed run leaves)."""
    return f"{data_prefix}/_verify/{pipeline}/{table}/run={run_id}/{name}.json"


def put_document(s3: S3Client, bucket: str, key: str, document: Any) -> None:
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(document).encode())
    except Exception as exc:
        raise StorageUnavailableError(f"S3 put of {key}: {exc}".splitlines()[0]) from None


def get_document(s3: S3Client, bucket: str, key: str) -> Any:
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except Exception as exc:
        raise StorageUnavailableError(f"S3 get of {key}: {exc}".splitlines()[0]) from None


def delete_documents(s3: S3Client, bucket: str, keys_: Sequence[str]) -> None:
    for key in keys_:
        try:
            s3.delete_object(Bucket=bucket, Key=key)
        except Exception as exc:
            raise StorageUnavailableError(f"S3 delete of {key}: {exc}".splitlines()[0]) from None


# --- the source side (MySQL) ---------------------------------------------------------------


def cut_ranges(
    conn: pymysql.Connection, table: TableConfig, range_rows: int
) -> list[checksum.KeyRange]:
    """Key ranges of about `range_rows` rows: the key every `range_rows` keys, walked on
    the primary key's index (each seek bounded below by the previous key).

    The first range is open below, the last open above (rows added since are in it).
    Bounds are in the order both engines compare keys (UTF-8 bytes for text).
    """
    key_cols = list(table.primary_key)
    qualified = quote_mysql_table(table.database, table.table)
    select = ", ".join(quote_mysql(c) for c in key_cols)
    bounds: list[keys.Key] = []
    previous: keys.Key | None = None
    while True:
        where, params = keys.after(key_cols, previous) if previous else ("TRUE", [])
        rows = query_all(
            conn,
            f"SELECT {select} FROM {qualified} WHERE {where} "  # noqa: S608 (quoted)
            f"ORDER BY {keys.order_by(key_cols)} LIMIT 1 OFFSET %s",
            [*params, range_rows - 1],
        )
        if not rows:
            break
        previous = [keys.to_key_value(v) for v in rows[0]]
        bounds.append(previous)
    ordered = sorted({json.dumps(b): b for b in bounds}.values(), key=_order)
    ranges: list[checksum.KeyRange] = []
    lower: keys.Key | None = None
    for upper in ordered:
        ranges.append(checksum.KeyRange(lower, upper))
        lower = upper
    ranges.append(checksum.KeyRange(lower, None))
    return ranges


def _order(key: keys.Key) -> tuple[Any, ...]:
    """Python's order of a key (text by code point = by UTF-8 bytes, as both engines compare)."""
    return tuple(key)


def due_predicate(table: TableConfig, watermark_key: keys.Key) -> keys.Predicate:
    """MySQL: the row's order key is at or before the watermark (NULL cursors per table)."""
    key_cols = [table.cursor, *[c for c in table.primary_key if c != table.cursor]]
    return keys.key_range(key_cols, None, watermark_key, include_null_cursor=table.load_null_cursor)


def compared_columns(
    conn: pymysql.Connection, table: TableConfig, name_map: dict[str, str]
) -> list[Column]:
    """The key columns and the cursor: what a row's hash covers (its identity and version)."""
    wanted = [*table.primary_key, *([] if table.cursor in table.primary_key else [table.cursor])]
    by_name = {c.source_name: c for c in source_columns(conn, table, name_map)}
    return [by_name[name] for name in wanted]


def source_document(
    conn: pymysql.Connection,
    table: TableConfig,
    *,
    schema: dict[str, Any],
    target_schema: str,
    watermark_key: keys.Key,
    soft_column: bool,
) -> dict[str, Any]:
    """The source's figures per range, and the warehouse statements that compare with them.

    The statements are built here, where the columns' types are known; the Load function
    submits them as they are.
    """
    columns = compared_columns(conn, table, schema["name_map"])
    ranges = cut_ranges(conn, table, table.verify_range_rows)
    due = due_predicate(table, watermark_key)
    figures: dict[int, list[int]] = {}
    for start in range(0, len(ranges), RANGES_PER_SOURCE_QUERY):
        batch = ranges[start : start + RANGES_PER_SOURCE_QUERY]
        sql, params = checksum.source_due_range_checksums_sql(
            table.database, table.table, columns, table.primary_key, batch, due
        )
        for index, rows_due, total, newer in query_all(conn, sql, params):
            figures[start + int(index)] = [int(rows_due), int(total or 0), int(newer)]
    name = table.table.lower()
    active = f"{quote_redshift(SOFT_DELETE_COLUMN)} IS NULL" if soft_column else None
    batches = checksum.range_batches(
        target_schema, name, columns, table.primary_key, ranges, MAX_SQL_BYTES, where=active
    )
    if len(batches) > MAX_STATEMENTS:
        raise LoadError(
            f"{table.name}: {len(ranges)} verification ranges need {len(batches)} statements "
            f"(at most {MAX_STATEMENTS}); raise verify_range_rows"
        )
    return {
        "ranges": [[r.lower, r.upper] for r in ranges],
        "source": {str(i): f for i, f in figures.items()},
        "target_sqls": [sql for _, sql in batches],
        "target_offsets": [offset for offset, _ in batches],
        "rows_select": checksum.target_rows_select(target_schema, name, columns, table.primary_key),
        "range_where": [
            checksum.target_range_predicate(columns, table.primary_key, r) for r in ranges
        ],
        "active": active,
    }


# --- the warehouse side (the Load function) -------------------------------------------------


def compare_ranges(
    document: dict[str, Any], results: Sequence[Sequence[Sequence[Any]]]
) -> dict[str, Any]:
    """The ranges whose figures agree (verified), and those to narrow.

    `results` are the rows of each of `document["target_sqls"]`, in order.
    """
    target: dict[int, checksum.RangeChecksum] = {}
    for offset, rows in zip(document["target_offsets"], results, strict=True):
        for index, found in checksum.parse_range_checksums(rows).items():
            target[offset + index] = found
    verified = newer = target_rows = 0
    narrow: list[int] = []
    for index in range(len(document["ranges"])):
        rows_due, total, rows_newer = document["source"].get(str(index), [0, 0, 0])
        held = target.get(index, checksum.RangeChecksum(index, 0, 0))
        if held.rows == rows_due and held.total == total:
            verified += rows_due
            newer += rows_newer
            target_rows += held.rows
        else:
            narrow.append(index)
    return {"verified": verified, "newer": newer, "target_rows": target_rows, "narrow": narrow}


def narrowing_statements(
    document: dict[str, Any], narrow: Sequence[int]
) -> tuple[list[str], list[int]]:
    """SELECTs of the keys of the ranges to narrow, each under the Data API's size limit,
    and the ranges they cover: more than MAX_STATEMENTS statements hold are left for the
    next run (reported)."""
    statements: list[str] = []
    covered: list[int] = []
    current: list[str] = []
    head = document["rows_select"]
    active = document.get("active")

    def sql(wheres: list[str]) -> str:
        where = " OR ".join(f"({w})" for w in wheres)
        extra = f" AND ({active})" if active else ""
        return f"{head} WHERE ({where}){extra}"

    for index in narrow:
        where = document["range_where"][index]
        if current and len(sql([*current, where]).encode()) > MAX_SQL_BYTES:
            statements.append(sql(current))
            current = []
            if len(statements) == MAX_STATEMENTS:
                return statements, covered
        current.append(where)
        covered.append(index)
    if current:
        statements.append(sql(current))
    return statements, covered


# --- narrowing and the outcome (the Plan function) --------------------------------------------


def source_rows(
    conn: pymysql.Connection,
    table: TableConfig,
    *,
    schema: dict[str, Any],
    document: dict[str, Any],
    ranges: Sequence[int],
    watermark_key: keys.Key,
) -> list[tuple[Any, ...]]:
    """`(key values..., key text, row hash, due)` of the source rows of `ranges`, one
    bounded statement per range."""
    columns = compared_columns(conn, table, schema["name_map"])
    bounds = [document["ranges"][index] for index in ranges]
    return due_rows(conn, table, columns=columns, bounds=bounds, watermark_key=watermark_key)


def due_rows(
    conn: pymysql.Connection,
    table: TableConfig,
    *,
    columns: Sequence[Column],
    bounds: Sequence[Sequence[Any]],
    watermark_key: keys.Key,
) -> list[tuple[Any, ...]]:
    """`(key values..., key text, row hash of `columns`, due)` of the source rows of each
    `[lower, upper]` key range, one bounded statement per range."""
    due = due_predicate(table, watermark_key)
    found: list[tuple[Any, ...]] = []
    for lower, upper in bounds:
        sql, params = checksum.source_due_row_checksums_sql(
            table.database,
            table.table,
            columns,
            table.primary_key,
            checksum.KeyRange(lower, upper),
            due,
        )
        found.extend(tuple(row) for row in query_all(conn, sql, params))
    return found


def text(value: Any) -> str:
    """A key text or row hash as text (MySQL gives bytes where a binary cast is involved)."""
    return value.decode("utf-8") if isinstance(value, bytes | bytearray) else str(value)


def warehouse_rows(
    target: Sequence[Sequence[Any]],
) -> tuple[dict[str, str], dict[str, list[Any]], Counter[str]]:
    """The warehouse's listed rows `(keys..., key text, row hash)` by key text: the
    (first) hash, the key values, and how many copies it holds."""
    held: dict[str, str] = {}
    values: dict[str, list[Any]] = {}
    copies: Counter[str] = Counter()
    for row in target:
        key = text(row[-2])
        copies[key] += 1
        held.setdefault(key, text(row[-1]))
        values.setdefault(key, list(row[:-2]))
    return held, values, copies


def classify(
    source: Sequence[Sequence[Any]], target: Sequence[Sequence[Any]]
) -> tuple[dict[str, int], list[list[Any]]]:
    """Counts of the narrowed ranges, and the keys found only in the warehouse.

    `source`: `(keys..., key text, row hash, due)`; `target`: `(keys..., key text, row hash)`.
    """
    held, values, copies = warehouse_rows(target)
    counts = dict.fromkeys(
        ("verified", "newer", "deleted", "missing", "duplicated", "differing", "source_due"), 0
    )
    counts["duplicated"] = sum(n - 1 for n in copies.values())
    counts["target_rows"] = len(target)
    seen: set[str] = set()
    for row in source:
        text, digest, due = str(row[-3]), str(row[-2]), int(row[-1])
        seen.add(text)
        if not due:
            counts["newer"] += 1
            continue
        counts["source_due"] += 1
        if text not in held:
            counts["missing"] += 1
        elif held[text] == digest:
            counts["verified"] += 1
        else:
            counts["differing"] += 1
    deleted = [values[text] for text in held if text not in seen]
    counts["deleted"] = len(deleted)
    return counts, deleted


def outcome(
    document: dict[str, Any],
    ranges: dict[str, Any],
    counts: dict[str, int] | None,
    *,
    deletes: str,
) -> Verification:
    """The whole table's verification: verified ranges plus the narrowed ones."""
    counts = counts or {}
    result = Verification(
        status="verified",
        verified_rows=ranges["verified"] + counts.get("verified", 0),
        newer_rows=ranges["newer"] + counts.get("newer", 0),
        deleted_in_source=counts.get("deleted", 0),
        missing_rows=counts.get("missing", 0),
        duplicated_rows=counts.get("duplicated", 0),
        differing_rows=counts.get("differing", 0),
        source_rows=ranges["verified"] + counts.get("source_due", 0),
        target_rows=ranges["target_rows"] + counts.get("target_rows", 0),
        ranges=len(document["ranges"]),
        ranges_narrowed=len(ranges.get("covered", [])),
        deletes=deletes,
    )
    left = len(ranges["narrow"]) - result.ranges_narrowed
    if left:
        result.reason = f"{left} ranges differ and are left for the next run to narrow"
    result.status = "mismatch" if result.mismatch else "verified"
    return result


def delete_statements(
    columns: Sequence[Column],
    *,
    table: TableConfig,
    target_schema: str,
    keys_: list[list[Any]],
    load_key: str,
    run_id: str,
    add_soft_column: bool,
) -> tuple[list[str], int]:
    """The statements of one transaction removing (or marking) keys deleted in the source,
    and how many keys they cover (as many as fit one batch; the next run finds the rest).

    Guarded by the table's ledger as a load is: a batch already recorded changes nothing
    (the key, `load_key`, is the digest of the deletes document's name, as a load's is of
    its files). `columns` are the compared columns (`compared_columns`).
    """
    qualified = quote_redshift_table(target_schema, table.table.lower())
    ledger = load.ledger_table(target_schema, table.table.lower())
    not_done = f"NOT EXISTS (SELECT 1 FROM {ledger} WHERE load_id = {sql_string(load_key)})"  # noqa: S608
    mark = quote_redshift(SOFT_DELETE_COLUMN)
    sqls = [load.create_ledger_sql(ledger)]
    if table.deletes == "soft" and add_soft_column:
        sqls.append(f"ALTER TABLE {qualified} ADD COLUMN {mark} TIMESTAMP")
    covered = 0
    room = MAX_STATEMENTS - DELETE_FIXED_STATEMENTS
    step = 1000
    while covered < len(keys_) and room > 0:
        batch = keys_[covered : covered + step]
        match = checksum.target_keys_predicate(columns, table.primary_key, batch)
        if table.deletes == "remove":
            sql = f"DELETE FROM {qualified} WHERE {match} AND {not_done}"  # noqa: S608
        else:
            sql = (
                f"UPDATE {qualified} SET {mark} = GETDATE() "  # noqa: S608
                f"WHERE {match} AND {mark} IS NULL AND {not_done}"
            )
        if len(sql.encode()) > MAX_SQL_BYTES and step > 1:
            step //= 2
            continue
        sqls.append(sql)
        covered += len(batch)
        room -= 1
    sqls.append(
        f"INSERT INTO {ledger} SELECT {sql_string(load_key)}, {sql_string(run_id)}, 1, "
        f"{int(covered)}, GETDATE() WHERE {not_done}"
    )
    return sqls, covered
