"""Cleaning a table's files off S3 (`s3clean`), keeping state consistent.

A table's objects live under its own prefix (`extract.table_prefix`, which ends in
`/`, so `db.t` never reaches into `db.t2`): chunk files under `run=<id>/` and load
manifests under `manifests/`. Each chunk file has a DynamoDB `FILE#` item whose
`status` says whether it was loaded into Redshift.

Three steps, so the decision can be tested without I/O:
1. `inventory` lists the objects under the exact table prefix and joins them to the
   table's `FILE#` items;
2. `select` decides what goes (pure: cutoff, pattern, and the safety rules below);
3. `execute` deletes the objects (batches of at most 1000) and then the `FILE#` items
   of the objects S3 confirmed deleted.

Safety rules: only `loaded` and `abandoned` files are deleted by default. A file is
`abandoned` when its items say `written` and its run is recorded as failed (the run
never committed its extraction, and no later run loads another run's uncommitted
files), or `superseded` (a watermark reset: the next run reads every row again). A
file whose item says `extracted` is waiting for a load; a `written` file of a run not
recorded as failed may belong to an extraction in progress (or a run that
died: the next failed-run record or `include_unloaded` decides); a chunk file without
any item may be one whose item is not written yet. Those are kept unless
`include_unloaded` is given. The newest manifest is kept too unless
`include_unloaded`: a load in flight reads it (COPY, then commit_load).
Ages come from S3 `LastModified`; the caller passes `now`.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from myshift import state
from myshift.clients import S3Client, S3Object, StateTable
from myshift.config import PipelineConfig
from myshift.errors import InputError, StorageUnavailableError
from myshift.extract import table_prefix

# S3 DeleteObjects takes at most 1000 keys per request.
DELETE_BATCH = 1000
MANIFESTS = "manifests/"
LOADED = "loaded"
EXTRACTED = "extracted"
WRITTEN = "written"
ABANDONED = "abandoned"
UNTRACKED = "untracked"
MANIFEST = "manifest"
DEFAULT_SCHEDULED_AGE = "30d"

_AGE = re.compile(r"(\d+)([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
# Far enough for any retention; bounds the arithmetic (datetime underflows otherwise).
_MAX_AGE = dt.timedelta(days=36_500)


def parse_age(text: str) -> dt.timedelta:
    """`7d`, `12h`, `30m` as a timedelta; anything else is an InputError."""
    match = _AGE.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match:
        raise InputError(
            f"--older-than must be a whole number followed by d, h or m "
            f"(e.g. 7d, 12h, 30m), got {text!r}"
        )
    number, unit = int(match.group(1)), match.group(2)
    if number == 0:
        raise InputError(f"--older-than must be more than zero, got {text!r}")
    if number > _MAX_AGE / dt.timedelta(**{_UNITS[unit]: 1}):
        raise InputError(f"--older-than {text!r} is more than 100 years")
    return dt.timedelta(**{_UNITS[unit]: number})


def human_bytes(size: int) -> str:
    """`1536` → `1.5 KiB` (binary units, one decimal)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class StoredFile:
    """One S3 object under a table's prefix, with what the state knows about it."""

    key: str
    name: str  # relative to the table prefix: `run=<id>/chunk-00001.parquet`
    size: int
    last_modified: dt.datetime
    status: str  # loaded | abandoned | extracted | untracked | manifest
    items: tuple[dict[str, str], ...] = ()  # the (pk, sk) of its FILE# items

    def age(self, now: dt.datetime) -> dt.timedelta:
        return now - self.last_modified

    def as_dict(self, now: dt.datetime | None = None) -> dict[str, Any]:
        record: dict[str, Any] = {
            "key": self.key,
            "name": self.name,
            "bytes": self.size,
            "last_modified": self.last_modified.isoformat(),
            "status": self.status,
        }
        if now is not None:
            record["age_seconds"] = int(self.age(now).total_seconds())
        return record


@dataclass(frozen=True)
class TableInventory:
    """Everything under one table's prefix, joined to its FILE# items."""

    pipeline: str
    table: str
    prefix: str
    files: list[StoredFile]
    # FILE# items under this prefix whose object no longer exists.
    missing: list[dict[str, Any]] = field(default_factory=list)
    # Runs recorded as failed that left `written` files (see the module doc).
    failed_runs: set[str] = field(default_factory=set)


@dataclass
class TableCleanup:
    """What one table's clean-up deletes (or would delete) and what it keeps."""

    pipeline: str
    table: str
    prefix: str
    cutoff: dt.datetime | None
    delete: list[StoredFile]
    kept: list[StoredFile]  # old enough and matching, but not (known to be) loaded
    stale_items: list[dict[str, Any]]  # items of loaded files already gone: removed
    dry_run: bool = True
    deleted_files: int = 0
    deleted_bytes: int = 0
    deleted_items: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def files(self) -> int:
        return len(self.delete)

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.delete)

    def as_dict(self, with_keys: bool = True) -> dict[str, Any]:
        kept: dict[str, int] = {}
        for file in self.kept:
            kept[file.status] = kept.get(file.status, 0) + 1
        record: dict[str, Any] = {
            "pipeline": self.pipeline,
            "table": self.table,
            "prefix": self.prefix,
            "cutoff": self.cutoff.isoformat() if self.cutoff else None,
            "dry_run": self.dry_run,
            "files": self.files,
            "bytes": self.bytes,
            "bytes_human": human_bytes(self.bytes),
            "kept_files": len(self.kept),
            "kept_bytes": sum(f.size for f in self.kept),
            "kept_by_status": kept,
            "stale_items": len(self.stale_items),
            "deleted_files": self.deleted_files,
            "deleted_bytes": self.deleted_bytes,
            "deleted_items": self.deleted_items,
            "errors": list(self.errors),
        }
        if with_keys:
            record["keys"] = [f.key for f in self.delete]
        return record


def _list_objects(s3: S3Client, bucket: str, prefix: str) -> Iterator[S3Object]:
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            yield from page.get("Contents", [])
    except (ClientError, BotoCoreError) as exc:
        raise StorageUnavailableError(f"S3 list {prefix}: {exc}".splitlines()[0]) from None


def inventory(
    s3: S3Client,
    state_table: StateTable,
    *,
    bucket: str,
    data_prefix: str,
    pipeline: PipelineConfig,
    table: str,
) -> TableInventory:
    """The objects under the table's exact prefix and their state (unknown table: ConfigError)."""
    name = pipeline.table(table).name
    prefix = table_prefix(data_prefix, pipeline.name, name)
    # The prefix must end in "/": without it `db.t` would also list `db.t2`.
    if not prefix.endswith("/"):
        raise InputError(f"table prefix {prefix!r} does not end with '/'")
    items_by_key: dict[str, list[dict[str, Any]]] = {}
    for item in state.list_files(state_table, pipeline.name, name):
        items_by_key.setdefault(str(item.get("s3_key", "")), []).append(item)
    failed_runs = _failed_runs(state_table, pipeline.name, name, items_by_key.values())
    files: list[StoredFile] = []
    seen: set[str] = set()
    for obj in _list_objects(s3, bucket, prefix):
        key = obj["Key"]
        if not key.startswith(prefix) or key.endswith("/"):
            continue  # a "folder" marker, or a listing that ignored the prefix
        seen.add(key)
        relative = key[len(prefix) :]
        items = items_by_key.get(key, [])
        if relative.startswith(MANIFESTS):
            status = MANIFEST
        elif not items:
            status = UNTRACKED
        elif all(i.get("status") == LOADED for i in items):
            # A retried commit step can leave two items for one file: all must say loaded.
            status = LOADED
        elif _abandoned(items, failed_runs):
            status = ABANDONED
        else:
            status = EXTRACTED
        files.append(
            StoredFile(
                key=key,
                name=relative,
                size=int(obj.get("Size", 0)),
                last_modified=obj["LastModified"],
                status=status,
                items=tuple({"pk": i["pk"], "sk": i["sk"]} for i in items),
            )
        )
    # Only items pointing under this prefix count as missing: with a wrong data prefix
    # nothing is listed, and every item would otherwise look like a stale one.
    missing = [
        item
        for key, items in items_by_key.items()
        if key.startswith(prefix) and key not in seen
        for item in items
    ]
    return TableInventory(pipeline.name, name, prefix, files, missing, failed_runs)


def _failed_runs(
    state_table: StateTable, pipeline: str, table: str, items: Iterable[list[dict[str, Any]]]
) -> set[str]:
    """Ids of the runs with `written` files whose run record says failed."""
    runs = {str(i.get("run_id")) for group in items for i in group if i.get("status") == WRITTEN}
    return {
        run_id
        for run_id in runs
        if (state.get_run(state_table, pipeline, table, run_id) or {}).get("status") == "failed"
    }


def _abandoned(items: Iterable[dict[str, Any]], failed_runs: set[str]) -> bool:
    """No item of the file will ever be loaded: written by a run that failed before
    committing it, or superseded by a watermark reset."""
    return all(
        i.get("status") == state.SUPERSEDED
        or (i.get("status") == WRITTEN and str(i.get("run_id")) in failed_runs)
        for i in items
    )


def _matches(name: str, pattern: str | None) -> bool:
    return pattern is None or fnmatch.fnmatchcase(name, pattern)


def select(
    found: TableInventory,
    *,
    now: dt.datetime,
    older_than: dt.timedelta | None = None,
    pattern: str | None = None,
    include_unloaded: bool = False,
) -> TableCleanup:
    """Decide what goes: old enough, matching `pattern`, and safe (see the module doc)."""
    if pattern is not None and not pattern.strip():
        raise InputError("--pattern must not be empty")
    cutoff = now - older_than if older_than is not None else None
    newest_manifest = max(
        (f for f in found.files if f.status == MANIFEST),
        key=lambda f: (f.last_modified, f.key),
        default=None,
    )
    delete: list[StoredFile] = []
    kept: list[StoredFile] = []
    for file in found.files:
        if cutoff is not None and file.last_modified >= cutoff:
            continue
        if not _matches(file.name, pattern):
            continue
        safe = file.status in (LOADED, ABANDONED) or (
            file.status == MANIFEST and file is not newest_manifest
        )
        (delete if safe or include_unloaded else kept).append(file)
    stale = [
        item
        for item in found.missing
        if (
            item.get("status") == LOADED
            or _abandoned([item], found.failed_runs)
            or include_unloaded
        )
        and _matches(str(item["s3_key"])[len(found.prefix) :], pattern)
    ]
    return TableCleanup(
        found.pipeline, found.table, found.prefix, cutoff, delete, kept, stale, dry_run=True
    )


def _batches(values: list[Any], size: int = DELETE_BATCH) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _delete_items(state_table: StateTable, keys: Iterable[dict[str, str]]) -> int:
    count = 0
    try:
        with state_table.batch_writer() as batch:
            for key in keys:
                batch.delete_item(Key={"pk": key["pk"], "sk": key["sk"]})
                count += 1
    except (ClientError, BotoCoreError) as exc:
        raise StorageUnavailableError(
            f"DynamoDB delete file items: {exc}".splitlines()[0]
        ) from None
    return count


def execute(
    s3: S3Client, state_table: StateTable, *, bucket: str, cleanup: TableCleanup
) -> TableCleanup:
    """Delete the selected objects, then the FILE# items of those S3 confirmed deleted.

    Objects go first: if the run stops half-way, what is left is an item whose object
    is gone, which the next clean removes (`stale_items`); the other order would leave
    untracked objects that are kept as possibly unloaded. Per-key S3 errors are
    collected in `errors` (their items stay) rather than raised, so the counts of what
    did go are still reported.
    """
    cleanup.dry_run = False
    for file in cleanup.delete:
        # Never act outside the table's prefix, whatever the caller put in the list.
        if not file.key.startswith(cleanup.prefix):
            raise InputError(f"refusing to delete {file.key}: not under {cleanup.prefix}")
    by_key = {f.key: f for f in cleanup.delete}
    for batch in _batches(cleanup.delete):
        try:
            response = s3.delete_objects(
                Bucket=bucket,
                Delete={"Objects": [{"Key": f.key} for f in batch], "Quiet": True},
            )
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailableError(f"S3 delete_objects: {exc}".splitlines()[0]) from None
        failed = {e["Key"]: e for e in response.get("Errors", [])}
        for key, error in failed.items():
            cleanup.errors.append(f"{key}: {error.get('Code', '')} {error.get('Message', '')}")
        gone = [by_key[f.key] for f in batch if f.key not in failed]
        cleanup.deleted_files += len(gone)
        cleanup.deleted_bytes += sum(f.size for f in gone)
        cleanup.deleted_items += _delete_items(state_table, (i for f in gone for i in f.items))
    cleanup.deleted_items += _delete_items(state_table, cleanup.stale_items)
    return cleanup


def clean_table(
    s3: S3Client,
    state_table: StateTable,
    *,
    bucket: str,
    data_prefix: str,
    pipeline: PipelineConfig,
    table: str,
    now: dt.datetime,
    older_than: dt.timedelta | None = None,
    pattern: str | None = None,
    include_unloaded: bool = False,
    dry_run: bool = False,
) -> TableCleanup:
    """Select one table's files and, unless `dry_run`, delete them."""
    found = inventory(
        s3, state_table, bucket=bucket, data_prefix=data_prefix, pipeline=pipeline, table=table
    )
    cleanup = select(
        found, now=now, older_than=older_than, pattern=pattern, include_unloaded=include_unloaded
    )
    if dry_run:
        return cleanup
    return execute(s3, state_table, bucket=bucket, cleanup=cleanup)


def plan_pipelines(
    s3: S3Client,
    state_table: StateTable,
    *,
    bucket: str,
    data_prefix: str,
    pipelines: Iterable[PipelineConfig],
    now: dt.datetime,
    older_than: dt.timedelta,
    include_unloaded: bool = False,
) -> list[TableCleanup]:
    """What a clean of every table of every pipeline would delete (changes nothing)."""
    return [
        select(
            inventory(
                s3,
                state_table,
                bucket=bucket,
                data_prefix=data_prefix,
                pipeline=pipeline,
                table=table.name,
            ),
            now=now,
            older_than=older_than,
            include_unloaded=include_unloaded,
        )
        for pipeline in pipelines
        for table in pipeline.tables
    ]


def execute_all(
    s3: S3Client, state_table: StateTable, *, bucket: str, cleanups: Iterable[TableCleanup]
) -> list[TableCleanup]:
    """`execute` each planned clean-up in turn (several tables)."""
    return [execute(s3, state_table, bucket=bucket, cleanup=c) for c in cleanups]


def totals(cleanups: Iterable[TableCleanup]) -> dict[str, Any]:
    """Counts over several tables (what the scheduled Lambda returns)."""
    cleanups = list(cleanups)
    files = sum(c.files for c in cleanups)
    size = sum(c.bytes for c in cleanups)
    return {
        "tables": len(cleanups),
        "files": files,
        "bytes": size,
        "bytes_human": human_bytes(size),
        "deleted_files": sum(c.deleted_files for c in cleanups),
        "deleted_bytes": sum(c.deleted_bytes for c in cleanups),
        "deleted_items": sum(c.deleted_items for c in cleanups),
        "kept_files": sum(len(c.kept) for c in cleanups),
        "errors": sum(len(c.errors) for c in cleanups),
    }


def scheduled_clean(
    s3: S3Client,
    state_table: StateTable,
    *,
    bucket: str,
    data_prefix: str,
    pipelines: Iterable[PipelineConfig],
    now: dt.datetime,
    older_than: str = DEFAULT_SCHEDULED_AGE,
    dry_run: bool = False,
) -> dict[str, Any]:
    """The nightly clean-up: loaded files of every table older than `older_than`.

    Unloaded files are never deleted here. Returns counts overall and per table; if S3
    refused any object, raises StorageUnavailableError after the rest was cleaned.
    """
    cleanups = plan_pipelines(
        s3,
        state_table,
        bucket=bucket,
        data_prefix=data_prefix,
        pipelines=pipelines,
        now=now,
        older_than=parse_age(older_than),
        include_unloaded=False,
    )
    if not dry_run:
        cleanups = execute_all(s3, state_table, bucket=bucket, cleanups=cleanups)
    errors = [e for c in cleanups for e in c.errors]
    if errors:
        done = totals(cleanups)
        raise StorageUnavailableError(
            f"S3 did not delete {len(errors)} object(s) (deleted {done['deleted_files']}); "
            f"first: {errors[0]}"
        )
    return {
        "older_than": older_than,
        "cutoff": (now - parse_age(older_than)).isoformat(),
        "dry_run": dry_run,
        **totals(cleanups),
        "by_table": [c.as_dict(with_keys=False) for c in cleanups],
    }
