"""Content reconciliation (`myshift reconcile`): every column of every row, MySQL against
Redshift, per key range; the rows that differ named, and with `fix` loaded again.

A reconciliation is an execution of the `reconcile` state machine. Per table (a child
execution each, holding the table's lock, so no sync changes the table meanwhile):

- `plan`: the primary key's ranges, about `verify_range_rows` rows each (walked on the
  key's index, as the verification cuts them), grouped `RANGES_PER_ITEM` to an item; the
  items go to S3 and a Distributed Map reads them.
- Per item (a child execution of its own: its own 25,000-event history): MySQL's count
  and checksum of every column of the item's ranges, in one statement bounded by the
  item's keys (`checksum.source_due_range_checksums_sql`: the source is read once), and
  Redshift's, one batch of aggregate statements for all the item's ranges. A range whose
  figures differ is split (`SPLIT_WAYS` parts, walked on the key within the range) and
  compared again, until it holds at most `LEAF_ROWS` source rows; then both sides list
  its rows' key and row hash and each key is named: missing, differing, duplicated in
  the warehouse, or deleted in the source.
- Like the verification, only rows *due* (order key at or before the watermark) are
  compared: a row changed since the last sync is *newer*, never a difference.
- `summarize`: the table's record (`RECONCILE#<id>`), and with `fix` the rows to read
  again: the named keys, `FIX_KEYS_PER_CHUNK` a chunk, extracted by the sync's own
  Extract (by primary key) into files of this reconciliation, then loaded by the sync's
  own load (`steps.start_load`: one transaction, the table's ledger keyed by the file
  set, so a retried load changes nothing). Keys deleted in the source are removed or
  marked per the table's `deletes` policy (`verification.delete_statements`, ledger
  guarded, one transaction); `keep` reports them only.

Documents between the steps go through S3 under `<data prefix>/_reconcile/` (the
Distributed Map reads its items from there), never through the payload, and are removed
when the table is done. Each MySQL query is bounded by a key range and uses the primary
key; the Load function submits, follows and reads every Redshift statement (the Data
API lets only the identity that ran a statement read its result).

Limits: merge tables only (append keeps every version of a row; replace reloads the
whole table each run); a table whose columns changed since its last sync is skipped
until a sync has loaded the change; at most `MAX_FIX_KEYS` rows are fixed per table and
reconciliation (the rest stay named: run it again); leaves beyond what one batch of 40
statements lists are left unnamed and counted (`ranges_left`); text keys compare by
UTF-8 bytes (checksum.py).
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pymysql
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from myshift import checksum, evolve, keys, load, state, steps, verification
from myshift.catalog import source_columns
from myshift.clients import RedshiftDataClient, S3Client, StateTable
from myshift.config import PipelineConfig, TableConfig
from myshift.errors import InputError, LoadError, StorageUnavailableError
from myshift.identifiers import quote_mysql, quote_mysql_table, quote_redshift
from myshift.schema import Column
from myshift.source import query_all
from myshift.workflow import check_run_id, tables_at_once

RANGES_PER_ITEM = 100  # ranges of one Distributed Map item: one MySQL statement
LEAF_ROWS = 100  # a differing range of at most this many source rows is listed row by row
SPLIT_WAYS = 16  # a larger differing range is split in about this many parts
MAX_LEVELS = 6  # splits at most (10,000,000 rows / 16^5 < 10): then listed anyway
FIX_KEYS_PER_CHUNK = 500  # rows a fix chunk reads by key
MAX_FIX_KEYS = 100_000  # rows one reconciliation fixes per table
NAMED_IN_RECORD = 50  # keys of each kind kept in the record (the CLI prints them)
KINDS = ("missing", "differing", "duplicated", "deleted")
RECORD = state.RECONCILE_PREFIX


class ReconcileInput(BaseModel):
    """`{"pipeline", "tables"?, "fix"?}` as a reconciliation is started."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pipeline: str = Field(min_length=1, max_length=63)
    tables: list[str] | None = Field(default=None, min_length=1)
    fix: StrictBool = False


def parse_input(raw: Any) -> ReconcileInput:
    """Validate the execution input; InputError names the field."""
    if not isinstance(raw, dict):
        raise InputError("reconcile input must be a JSON object")
    try:
        request = ReconcileInput.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise InputError(f"reconcile input {where}: {error['msg']}") from None
    if request.tables and len(set(request.tables)) != len(request.tables):
        raise InputError("reconcile input tables: a table is listed twice")
    return request


def run_items(
    request: ReconcileInput, pipeline: PipelineConfig, run_id: str, poll_seconds: int
) -> dict[str, Any]:
    """The reconciliation as the state machine maps over it (table names only)."""
    check_run_id(run_id)
    names = request.tables or [t.name for t in pipeline.tables]
    for name in names:
        pipeline.table(name)  # ConfigError for an unknown table
    return {
        "pipeline": pipeline.name,
        "run_id": run_id,
        "fix": request.fix,
        "poll_seconds": poll_seconds,
        "max_concurrent_tables": tables_at_once(pipeline, len(names)),
        "tables": names,
    }


# --- documents -------------------------------------------------------------------------------


def documents_prefix(data_prefix: str, pipeline: str, table: str, run_id: str) -> str:
    return f"{data_prefix}/_reconcile/{pipeline}/{table}/run={run_id}/"


def document_key(data_prefix: str, item: dict[str, Any], name: str) -> str:
    """Where one of a table's reconciliation documents lives (removed when it ends)."""
    prefix = documents_prefix(data_prefix, item["pipeline"], item["table"], item["run_id"])
    return f"{prefix}{name}.json"


def _item_document(data_prefix: str, item: dict[str, Any], name: str) -> str:
    return document_key(data_prefix, item, f"item-{int(item['item']['item']):05d}/{name}")


def delete_prefix(s3: S3Client, bucket: str, prefix: str) -> int:
    """Remove every object under `prefix`; how many."""
    removed = 0
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=entry["Key"])
                removed += 1
    except Exception as exc:
        raise StorageUnavailableError(f"S3 clean-up of {prefix}: {exc}".splitlines()[0]) from None
    return removed


# --- what is compared --------------------------------------------------------------------------


def skip_reason(
    table: TableConfig, schema: dict[str, Any], watermark: dict[str, Any]
) -> str | None:
    """Why a table is not reconciled, or None."""
    if table.write_mode != "merge":
        return f"write_mode {table.write_mode}: only merge tables hold one version per key"
    if not schema.get("table"):
        return "the warehouse table does not exist yet"
    if watermark.get("last_key") is None:
        return "no watermark: no row is due yet"
    adds, widens = evolve.pending_changes(schema["layout"], schema["table"])
    if adds or widens:
        return "the source's columns changed since the last load: sync the table first"
    return None


def compared_columns(
    conn: pymysql.Connection, table: TableConfig, schema: dict[str, Any]
) -> list[Column]:
    """Every source column the warehouse table holds (the target's own columns aside)."""
    held = {c["target"] for c in schema["table"]}
    return [c for c in source_columns(conn, table, schema["name_map"]) if c.target_name in held]


def _active(schema: dict[str, Any]) -> str | None:
    """Warehouse rows still in the source's picture (soft-deleted rows are not)."""
    if schema.get("soft_delete_column"):
        return f"{quote_redshift(verification.SOFT_DELETE_COLUMN)} IS NULL"
    return None


def cut_within(
    conn: pymysql.Connection,
    table: TableConfig,
    lower: keys.Key | None,
    upper: keys.Key | None,
    step: int,
) -> list[checksum.KeyRange]:
    """`lower < key <= upper` cut into ranges of about `step` rows, walking the primary
    key's index within the range (each seek bounded by the range)."""
    key_cols = list(table.primary_key)
    select = ", ".join(quote_mysql(c) for c in key_cols)
    qualified = quote_mysql_table(table.database, table.table)
    ceiling, ceiling_params = keys.at_or_before(key_cols, upper) if upper else ("TRUE", [])
    bounds: list[keys.Key] = []
    previous = lower
    while True:
        floor, floor_params = keys.after(key_cols, previous) if previous else ("TRUE", [])
        rows = query_all(
            conn,
            f"SELECT {select} FROM {qualified} WHERE {floor} AND {ceiling} "  # noqa: S608
            f"ORDER BY {keys.order_by(key_cols)} LIMIT 1 OFFSET %s",
            [*floor_params, *ceiling_params, step - 1],
        )
        if not rows:
            break
        previous = [keys.to_key_value(v) for v in rows[0]]
        bounds.append(previous)
    inside = sorted(
        {
            json.dumps(b): b
            for b in bounds
            if (lower is None or tuple(b) > tuple(lower))
            and (upper is None or tuple(b) < tuple(upper))
        }.values(),
        key=tuple,
    )
    edges: list[keys.Key | None] = [lower, *inside, upper]
    return [checksum.KeyRange(a, b) for a, b in itertools.pairwise(edges)]


def level_document(
    conn: pymysql.Connection,
    table: TableConfig,
    *,
    columns: Sequence[Column],
    groups: Sequence[Sequence[checksum.KeyRange]],
    watermark: keys.Key,
    target_schema: str,
    schema: dict[str, Any],
) -> dict[str, Any]:
    """MySQL's figures of each range (due rows, their checksum, newer rows) and the
    Redshift statements that compute the warehouse's.

    `groups` are runs of contiguous ranges in key order: one MySQL statement per group
    (at most `verification.RANGES_PER_SOURCE_QUERY` ranges), bounded by its keys.
    """
    due = verification.due_predicate(table, watermark)
    ranges = [r for group in groups for r in group]
    figures: dict[str, list[int]] = {}
    offset = 0
    for group in groups:
        for start in range(0, len(group), verification.RANGES_PER_SOURCE_QUERY):
            batch = group[start : start + verification.RANGES_PER_SOURCE_QUERY]
            sql, params = checksum.source_due_range_checksums_sql(
                table.database, table.table, columns, table.primary_key, batch, due
            )
            for index, rows_due, total, newer in query_all(conn, sql, params):
                figures[str(offset + start + int(index))] = [
                    int(rows_due or 0),
                    int(total or 0),
                    int(newer or 0),
                ]
        offset += len(group)
    batches = checksum.range_batches(
        target_schema,
        table.table.lower(),
        columns,
        table.primary_key,
        ranges,
        verification.MAX_SQL_BYTES,
        where=_active(schema),
    )
    if len(batches) > verification.MAX_STATEMENTS:
        raise LoadError(
            f"{table.name}: {len(ranges)} ranges need {len(batches)} statements "
            f"(at most {verification.MAX_STATEMENTS}); lower verify_range_rows"
        )
    return {
        "ranges": [[r.lower, r.upper] for r in ranges],
        "source": figures,
        "target_sqls": [sql for _, sql in batches],
        "target_offsets": [start for start, _ in batches],
    }


def compare_level(
    document: dict[str, Any], results: Sequence[Sequence[Sequence[Any]]], level: int
) -> dict[str, Any]:
    """Agreeing ranges are reconciled; the others are split, or listed row by row when
    small (or split `MAX_LEVELS` times already)."""
    target: dict[int, checksum.RangeChecksum] = {}
    for offset, rows in zip(document["target_offsets"], results, strict=True):
        for index, found in checksum.parse_range_checksums(rows).items():
            target[offset + index] = found
    compared: dict[str, Any] = {
        "verified": int(document.get("verified", 0)),
        "newer": int(document.get("newer", 0)),
        "leaves": list(document.get("leaves", [])),
        "split": [],
    }
    for index, (lower, upper) in enumerate(document["ranges"]):
        rows_due, total, newer = document["source"].get(str(index), [0, 0, 0])
        held = target.get(index, checksum.RangeChecksum(index, 0, 0))
        if held.rows == rows_due and held.total == total:
            compared["verified"] += rows_due
            compared["newer"] += newer
        elif rows_due + newer <= LEAF_ROWS or level + 1 >= MAX_LEVELS:
            compared["leaves"].append([lower, upper])
        else:
            compared["split"].append([lower, upper, rows_due + newer])
    return compared


def split_groups(
    conn: pymysql.Connection, table: TableConfig, split: Sequence[Sequence[Any]]
) -> list[list[checksum.KeyRange]]:
    """Each range to split, cut in about SPLIT_WAYS parts of at least LEAF_ROWS rows."""
    groups = []
    for lower, upper, rows in split:
        step = max(LEAF_ROWS, math.ceil(int(rows) / SPLIT_WAYS))
        groups.append(cut_within(conn, table, lower, upper, step))
    return groups


def source_rows(
    conn: pymysql.Connection,
    table: TableConfig,
    *,
    columns: Sequence[Column],
    leaves: Sequence[Sequence[Any]],
    watermark: keys.Key,
) -> list[list[Any]]:
    """`[key values..., key text, row hash, due]` of the leaves' source rows, one bounded
    statement per leaf; key values JSON-safe (as the extractor compares them)."""
    width = len(table.primary_key)
    found: list[list[Any]] = []
    rows = verification.due_rows(
        conn, table, columns=columns, bounds=leaves, watermark_key=watermark
    )
    for row in rows:
        values = [keys.to_key_value(v) for v in row[:width]]
        texts = [verification.text(v) for v in row[width : width + 2]]
        found.append([*values, *texts, int(row[width + 2])])
    return found


def classify(source: Sequence[Sequence[Any]], target: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """Each key of the listed rows named.

    `source`: `[keys..., key text, row hash, due]`; `target`: `[keys..., key text, row
    hash]`. A due source row is verified when the warehouse holds it once with the same
    hash; else missing, duplicated (held more than once) or differing. A source row not
    due is newer. A key only the warehouse holds was deleted in the source. Key values:
    the source's for the first three (they are read again), the warehouse's for deleted.
    """
    held, values, copies = verification.warehouse_rows(target)
    found: dict[str, Any] = {"verified": 0, "newer": 0, **{kind: [] for kind in KINDS}}
    seen: set[str] = set()
    for row in source:
        key, due = list(row[:-3]), int(row[-1])
        text, digest = verification.text(row[-3]), verification.text(row[-2])
        seen.add(text)
        if not due:
            found["newer"] += 1
        elif text not in held:
            found["missing"].append(key)
        elif copies[text] > 1:
            found["duplicated"].append(key)
        elif held[text] != digest:
            found["differing"].append(key)
        else:
            found["verified"] += 1
    found["deleted"] = [values[text] for text in held if text not in seen]
    return found


def result_document(
    compared: dict[str, Any], named: dict[str, Any] | None, left: int
) -> dict[str, Any]:
    """An item's outcome: counts, the keys it named, leaves it could not list."""
    named = named or {"verified": 0, "newer": 0, **{kind: [] for kind in KINDS}}
    return {
        "verified": int(compared["verified"]) + int(named["verified"]),
        "newer": int(compared["newer"]) + int(named["newer"]),
        **{kind: named[kind] for kind in KINDS},
        "left": left,
    }


def _unique(keys_: Sequence[Sequence[Any]]) -> list[list[Any]]:
    return list({json.dumps(list(k)): list(k) for k in keys_}.values())


def totals(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The table's outcome from its items' results."""
    named = {kind: _unique([k for r in results for k in r[kind]]) for kind in KINDS}
    return {
        "verified_rows": sum(int(r["verified"]) for r in results),
        "newer_rows": sum(int(r["newer"]) for r in results),
        "ranges_left": sum(int(r["left"]) for r in results),
        "named": named,
    }


def record_of(found: dict[str, Any], *, deletes: str) -> dict[str, Any]:
    """What the table's record keeps: counts, and the first keys of each kind."""
    named = found["named"]
    counts = {
        "missing_rows": len(named["missing"]),
        "differing_rows": len(named["differing"]),
        "duplicated_rows": len(named["duplicated"]),
        "deleted_in_source": len(named["deleted"]),
    }
    # Rows the warehouse must change: deleted ones too when the policy removes or marks.
    to_fix = counts["missing_rows"] + counts["differing_rows"] + counts["duplicated_rows"]
    if deletes != "keep":
        to_fix += counts["deleted_in_source"]
    return {
        "status": "differs" if to_fix or found["ranges_left"] else "equal",
        "verified_rows": found["verified_rows"],
        "newer_rows": found["newer_rows"],
        "ranges_left": found["ranges_left"],
        "rows_to_fix": to_fix,
        **counts,
        "deletes": deletes,
        "named": {kind: named[kind][:NAMED_IN_RECORD] for kind in KINDS},
    }


def fix_chunks(keys_to_read: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """The fix's chunks: the named keys, FIX_KEYS_PER_CHUNK each (read by primary key)."""
    return [
        {"index": i, "keys": [list(k) for k in keys_to_read[start : start + FIX_KEYS_PER_CHUNK]]}
        for i, start in enumerate(range(0, len(keys_to_read), FIX_KEYS_PER_CHUNK))
    ]


def item_ranges(
    ranges: Sequence[checksum.KeyRange], at_once: int
) -> list[Sequence[checksum.KeyRange]]:
    """The ranges in items of equal size: at most RANGES_PER_ITEM each, and at least as
    many items as run at once (so a small table's reading is spread too)."""
    count = max(math.ceil(len(ranges) / RANGES_PER_ITEM), min(at_once, len(ranges)), 1)
    size = math.ceil(len(ranges) / count)
    return [ranges[start : start + size] for start in range(0, len(ranges), size)]


# --- the steps (one handler call each) -------------------------------------------------------


_Given = TypeVar("_Given")


def _given(value: _Given | None, what: str) -> _Given:
    if value is None:
        raise TypeError(f"this reconcile step needs {what}, which its function did not pass")
    return value


@dataclass(frozen=True)
class Step:
    """What a step of the Plan or the Load function gets: its clients (MySQL for Plan, the
    Data API for Load), where the documents live, the pipeline and the table's item."""

    s3: S3Client
    bucket: str
    data_prefix: str
    pipeline: PipelineConfig
    item: dict[str, Any]
    state_table: StateTable | None = None
    conn: pymysql.Connection | None = None
    redshift_data: RedshiftDataClient | None = None

    def mysql(self) -> pymysql.Connection:
        """The MySQL connection (a Plan function's step)."""
        return _given(self.conn, "a MySQL connection")

    def table_state(self) -> StateTable:
        """The state table (a Plan function's step)."""
        return _given(self.state_table, "the state table")

    def warehouse(self) -> RedshiftDataClient:
        """The Data API client (a Load function's step)."""
        return _given(self.redshift_data, "the Redshift Data API client")

    def document(self, name: str) -> Any:
        """One of the item's documents (S3)."""
        key = _item_document(self.data_prefix, self.item, name)
        return verification.get_document(self.s3, self.bucket, key)

    def put(self, name: str, document: Any) -> None:
        """Write one of the item's documents (S3)."""
        key = _item_document(self.data_prefix, self.item, name)
        verification.put_document(self.s3, self.bucket, key, document)


def _record(
    state_table: StateTable, item: dict[str, Any], changes: dict[str, Any]
) -> dict[str, Any]:
    return state.update_run(
        state_table, item["pipeline"], item["table"], item["run_id"], changes, prefix=RECORD
    )


def acquire_lock(
    state_table: StateTable,
    pipeline: PipelineConfig,
    item: dict[str, Any],
    *,
    now: str,
    now_epoch: int,
) -> dict[str, Any]:
    """Take the table's lock, as a sync does: no sync changes the table meanwhile (a
    locked table fails with TableLockedError, recorded as skipped)."""
    pipeline.table(item["table"])
    state.acquire_lock(
        state_table,
        pipeline.name,
        item["table"],
        item["run_id"],
        now_epoch,
        pipeline.lock_lease_seconds,
    )
    _record(
        state_table,
        item,
        {"status": "running", "phase": "comparing", "fix": bool(item["fix"]), "started_at": now},
    )
    return item


def plan(step: Step) -> dict[str, Any]:
    """The table's key ranges, as Distributed Map items on S3; `compare` False (and the
    reason recorded) when the table is not reconciled."""
    s3, state_table = step.s3, step.table_state()
    bucket, data_prefix, pipeline, item = step.bucket, step.data_prefix, step.pipeline, step.item
    table = pipeline.table(item["table"])
    schema = state.get_schema(state_table, pipeline.name, table.name) or {}
    watermark = state.get_watermark(state_table, pipeline.name, table.name)
    reason = skip_reason(table, schema, watermark)
    if reason is not None:
        _record(state_table, item, {"status": "skipped", "reason": reason})
        return {**item, "compare": False}
    ranges = verification.cut_ranges(step.mysql(), table, table.verify_range_rows)
    items = [
        {
            "item": number,
            "watermark": watermark["last_key"],
            "ranges": [[r.lower, r.upper] for r in part],
        }
        for number, part in enumerate(item_ranges(ranges, pipeline.max_concurrent_chunks))
    ]
    key = document_key(data_prefix, item, "items")
    verification.put_document(s3, bucket, key, items)
    _record(
        state_table,
        item,
        {"ranges": len(ranges), "items": len(items), "watermark": watermark["last_key"]},
    )
    return {
        **item,
        "compare": True,
        "items_key": key,
        "item_count": len(items),
        # Items read MySQL at once: as many as chunks of a sync (protects the source).
        "max_concurrent_items": pipeline.max_concurrent_chunks,
    }


def _context(
    conn: pymysql.Connection,
    state_table: StateTable,
    pipeline: PipelineConfig,
    item: dict[str, Any],
) -> tuple[TableConfig, dict[str, Any], list[Column]]:
    table = pipeline.table(item["table"])
    schema = state.get_schema(state_table, pipeline.name, table.name) or {}
    return table, schema, compared_columns(conn, table, schema)


def item_source(step: Step) -> dict[str, Any]:
    """An item's first level: MySQL's figures of its ranges, Redshift's statements."""
    conn, state_table, pipeline, item = step.mysql(), step.table_state(), step.pipeline, step.item
    table, schema, columns = _context(conn, state_table, pipeline, item)
    ranges = [checksum.KeyRange(lower, upper) for lower, upper in item["item"]["ranges"]]
    document = level_document(
        conn,
        table,
        columns=columns,
        groups=[ranges],
        watermark=item["item"]["watermark"],
        target_schema=pipeline.target.schema_name,
        schema=schema,
    )
    step.put("level-0", document)
    return {"level": 0, "split": 0, "leaves": 0}


def submit_checksums(step: Step) -> dict[str, Any]:
    """Submit the warehouse's figures of a level's ranges: one batch of aggregates."""
    redshift_data, pipeline, item = step.warehouse(), step.pipeline, step.item
    level = int(item["round"]["level"])
    document = step.document(f"level-{level}")
    name = f"myshift-reconcile-{item['run_id']}-{item['table']}-{item['item']['item']}-{level}"
    statement_id = load.submit(redshift_data, pipeline.target, document["target_sqls"], name)
    return _submitted(statement_id, item)


def _submitted(statement_id: str | None, item: dict[str, Any]) -> dict[str, Any]:
    return steps.submitted(statement_id, poll_seconds=int(item["poll_seconds"])).dump()


def compare_checksums(step: Step) -> dict[str, Any]:
    """The level's ranges compared; what is left to split and to list. An item with
    nothing left has its result written here."""
    item = step.item
    level = int(item["round"]["level"])
    document = step.document(f"level-{level}")
    results = load.batch_rows(step.warehouse(), item["checksums"]["statement_id"])
    compared = compare_level(document, results, level)
    step.put(f"compared-{level}", compared)
    if not compared["split"] and not compared["leaves"]:
        step.put("result", result_document(compared, None, 0))
    return {"level": level, "split": len(compared["split"]), "leaves": len(compared["leaves"])}


def split_ranges(step: Step) -> dict[str, Any]:
    """The next level: each differing range split, MySQL's figures of the parts."""
    conn, state_table, pipeline, item = step.mysql(), step.table_state(), step.pipeline, step.item
    level = int(item["round"]["level"])
    compared = step.document(f"compared-{level}")
    table, schema, columns = _context(conn, state_table, pipeline, item)
    document = level_document(
        conn,
        table,
        columns=columns,
        groups=split_groups(conn, table, compared["split"]),
        watermark=item["item"]["watermark"],
        target_schema=pipeline.target.schema_name,
        schema=schema,
    )
    document.update(
        verified=compared["verified"], newer=compared["newer"], leaves=compared["leaves"]
    )
    step.put(f"level-{level + 1}", document)
    return {"level": level + 1, "split": 0, "leaves": 0}


def list_rows(step: Step) -> dict[str, Any]:
    """The leaves' source rows (key, row hash, due), and the warehouse's listing to submit."""
    conn, state_table, pipeline, item = step.mysql(), step.table_state(), step.pipeline, step.item
    level = int(item["round"]["level"])
    compared = step.document(f"compared-{level}")
    table, schema, columns = _context(conn, state_table, pipeline, item)
    leaves = compared["leaves"]
    listing = {
        "rows_select": checksum.target_rows_select(
            pipeline.target.schema_name, table.table.lower(), columns, table.primary_key
        ),
        "range_where": [
            checksum.target_range_predicate(columns, table.primary_key, checksum.KeyRange(lo, up))
            for lo, up in leaves
        ],
        "active": _active(schema),
    }
    statements, covered = verification.narrowing_statements(listing, list(range(len(leaves))))
    source = source_rows(
        conn,
        table,
        columns=columns,
        leaves=[leaves[i] for i in covered],
        watermark=item["item"]["watermark"],
    )
    document = {
        "source": source,
        "statements": statements,
        "left": len(leaves) - len(covered),
        "verified": compared["verified"],
        "newer": compared["newer"],
    }
    step.put("rows", document)
    return {"statements": len(statements)}


def submit_listing(step: Step) -> dict[str, Any]:
    """Submit the warehouse's listing of the leaves' rows."""
    redshift_data, pipeline, item = step.warehouse(), step.pipeline, step.item
    document = step.document("rows")
    if not document["statements"]:
        return _submitted(None, item)
    name = f"myshift-reconcile-rows-{item['run_id']}-{item['table']}-{item['item']['item']}"
    return _submitted(
        load.submit(redshift_data, pipeline.target, document["statements"], name), item
    )


def name_rows(step: Step) -> dict[str, Any]:
    """The leaves' keys named from both listings: the item's result."""
    redshift_data, item = step.warehouse(), step.item
    document = step.document("rows")
    statement_id = item["listing"]["statement_id"]
    parts = load.batch_rows(redshift_data, statement_id) if statement_id else []
    named = classify(document["source"], [row for part in parts for row in part])
    result = result_document(document, named, int(document["left"]))
    step.put("result", result)
    return {kind: len(result[kind]) for kind in KINDS}


def summarize(step: Step) -> dict[str, Any]:
    """The table's outcome from its items' results, in its record; with `fix`, the
    chunks that read the named rows again (S3) and the deletes' statements."""
    s3, state_table = step.s3, step.table_state()
    bucket, data_prefix, pipeline, item = step.bucket, step.data_prefix, step.pipeline, step.item
    table = pipeline.table(item["table"])
    results = [
        verification.get_document(
            s3, bucket, document_key(data_prefix, item, f"item-{number:05d}/result")
        )
        for number in range(int(item["item_count"]))
    ]
    found = totals(results)
    record = record_of(found, deletes=table.deletes)
    answer = {k: v for k, v in item.items() if k not in ("items_key",)}
    answer.update(chunk_count=0, deletes=0)
    if item["fix"]:
        named = found["named"]
        to_read = _unique([*named["missing"], *named["differing"], *named["duplicated"]])
        chunks = fix_chunks(to_read[:MAX_FIX_KEYS])
        record["rows_left_unfixed"] = max(0, len(to_read) - MAX_FIX_KEYS)
        schema = state.get_schema(state_table, pipeline.name, table.name) or {}
        if chunks:
            plan_key = document_key(data_prefix, item, "fix-chunks")
            verification.put_document(s3, bucket, plan_key, chunks)
            answer.update(
                chunk_count=len(chunks),
                plan_key=plan_key,
                column_count=len(schema["layout"]),
                order_index=None,
                max_concurrent_chunks=pipeline.max_concurrent_chunks,
            )
        if named["deleted"] and table.deletes != "keep":
            key = document_key(data_prefix, item, "deletes")
            columns = compared_columns(step.mysql(), table, schema)
            sqls, covered = verification.delete_statements(
                columns,
                table=table,
                target_schema=pipeline.target.schema_name,
                keys_=named["deleted"],
                load_key=load.load_id([key]),
                run_id=item["run_id"],
                add_soft_column=not schema.get("soft_delete_column"),
            )
            verification.put_document(s3, bucket, key, {"sqls": sqls, "keys": covered})
            answer["deletes"] = covered
            record["rows_left_unfixed"] += len(named["deleted"]) - covered
        record["phase"] = "fixing" if chunks or answer["deletes"] else "compared"
    _record(state_table, item, record)
    return answer


def commit_fix_extraction(
    state_table: StateTable, item: dict[str, Any], now: str
) -> dict[str, Any]:
    """The fix's files `extracted` (the sync's load takes them); the watermark unchanged:
    the rows read again are the rows the warehouse already should hold."""
    files = steps.recorded_files(
        state_table, item["pipeline"], item["table"], item["run_id"], int(item["chunk_count"])
    )
    state.mark_files(state_table, files, "extracted", extracted_at=now)
    _record(state_table, item, {"rows_read_again": sum(int(f["rows"]) for f in files)})
    return {k: v for k, v in item.items() if k not in ("plan_key",)}


def commit_fix_load(
    state_table: StateTable, s3: S3Client, *, bucket: str, item: dict[str, Any], now: str
) -> dict[str, Any]:
    """After the fix's load committed: its files loaded (as a sync's load records them)."""
    pipeline, table, run_id = item["pipeline"], item["table"], item["run_id"]
    counts = load.LoadCounts(**item["load"]["counts"])
    files = steps.files_in_manifest(
        state_table, s3, bucket, pipeline, table, item["load"]["manifest_key"]
    )
    columns = len((state.get_schema(state_table, pipeline, table) or {}).get("layout") or [])
    steps.record_loaded(state_table, pipeline, table, files, counts, now, run_id, columns)
    _record(state_table, item, {"rows_fixed": counts.rows_staged, "files_loaded": len(files)})
    return {k: v for k, v in item.items() if k != "load"}


def submit_deletes(step: Step) -> dict[str, Any]:
    """Submit the removal (or marking) of the keys deleted in the source."""
    s3, redshift_data = step.s3, step.warehouse()
    bucket, data_prefix, pipeline, item = step.bucket, step.data_prefix, step.pipeline, step.item
    document = verification.get_document(s3, bucket, document_key(data_prefix, item, "deletes"))
    name = f"myshift-reconcile-deletes-{item['run_id']}-{item['table']}"
    return _submitted(load.submit(redshift_data, pipeline.target, document["sqls"], name), item)


def commit_deletes(
    state_table: StateTable, *, pipeline: PipelineConfig, item: dict[str, Any]
) -> dict[str, Any]:
    """The deletes committed: counted; a soft table has its column from now on."""
    table = pipeline.table(item["table"])
    _record(state_table, item, {"deletes_applied": int(item["deletes"])})
    if table.deletes == "soft":
        schema = state.get_schema(state_table, pipeline.name, table.name) or {}
        if not schema.get("soft_delete_column"):
            state.put_schema(
                state_table, pipeline.name, table.name, {**schema, "soft_delete_column": True}
            )
    return {k: v for k, v in item.items() if k != "deletes_statement"}


def outcome(record: dict[str, Any]) -> str:
    """The table's final status: equal, differs, fixed, skipped, locked or failed."""
    status = str(record.get("status") or "failed")
    if status != "differs" or not record.get("fix"):
        return status
    fixed = int(record.get("rows_fixed") or 0) > 0 or int(record.get("deletes_applied") or 0) > 0
    complete = not int(record.get("ranges_left") or 0) and not int(
        record.get("rows_left_unfixed") or 0
    )
    return "fixed" if fixed and complete else "differs"


def release(
    state_table: StateTable,
    s3: S3Client,
    *,
    bucket: str,
    data_prefix: str,
    item: dict[str, Any],
    now: str,
) -> dict[str, Any]:
    """The table's reconciliation done: lock released, documents removed, final status."""
    pipeline, table, run_id = item["pipeline"], item["table"], item["run_id"]
    state.release_lock(state_table, pipeline, table, run_id)
    delete_prefix(s3, bucket, documents_prefix(data_prefix, pipeline, table, run_id))
    record = state.get_runs(state_table, pipeline, [table], run_id, prefix=RECORD).get(table, {})
    final = _record(
        state_table, item, {"status": outcome(record), "phase": "done", "finished_at": now}
    )
    return {"table": table, "status": final["status"]}


def record_failure(
    state_table: StateTable,
    s3: S3Client,
    *,
    bucket: str,
    data_prefix: str,
    item: dict[str, Any],
    now: str,
) -> dict[str, Any]:
    """A table that failed (or was locked by a run: skipped, nothing touched)."""
    pipeline, table, run_id = item["pipeline"], item["table"], item["run_id"]
    error_type, message = steps.failure_message(item.get("error", {}))
    if error_type == "TableLockedError":
        changes = {"status": "locked", "reason": f"skipped, a run holds the table ({message})"}
    else:
        state.release_lock(state_table, pipeline, table, run_id)
        delete_prefix(s3, bucket, documents_prefix(data_prefix, pipeline, table, run_id))
        changes = {"status": "failed", "error": error_type, "cause": message}
    final = _record(state_table, item, {**changes, "phase": "done", "finished_at": now})
    return {"table": table, "status": final["status"]}


def report(state_table: StateTable, run: dict[str, Any]) -> dict[str, Any]:
    """The reconciliation's small outcome (each table's record stays in DynamoDB)."""
    records = state.get_runs(
        state_table, run["pipeline"], list(run["tables"]), run["run_id"], prefix=RECORD
    )
    statuses = Counter(str((records.get(t) or {}).get("status", "failed")) for t in run["tables"])
    return {
        "pipeline": run["pipeline"],
        "run_id": run["run_id"],
        "tables": len(run["tables"]),
        "statuses": dict(statuses),
        "rows_to_fix": sum(int(r.get("rows_to_fix") or 0) for r in records.values()),
    }
