"""Sync state in DynamoDB: watermarks, the column name map, processed files, runs.

One table, items keyed by `pk = "<pipeline>#<database.table>"` and `sk`:
`WATERMARK`, `SCHEMA`, `FILE#<seq>` (one item per S3 file), `RUN#<run id>`, and
`PLAN#<run id>` (what a run's plan decided and the workflow payload does not carry).
Watermark writes are conditional on a version number, so two writers cannot
silently overwrite each other. Functions take the boto3 `Table` resource.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import BotoCoreError, ClientError

from myshift.clients import StateTable
from myshift.errors import StateConflictError, StorageUnavailableError, TableLockedError

WATERMARK = "WATERMARK"
LOCK = "LOCK"
SCHEMA = "SCHEMA"
LOAD = "LOAD"  # the load submitted and not yet committed (at most one per table)
FILE_PREFIX = "FILE#"
RUN_PREFIX = "RUN#"
PLAN_PREFIX = "PLAN#"
RECONCILE_PREFIX = "RECONCILE#"  # a reconciliation's record (`myshift reconcile`)
# A run's plan is only read while the run goes on; DynamoDB's TTL removes it later.
PLAN_TTL_SECONDS = 30 * 24 * 3600

WATERMARK_DEFAULTS: dict[str, Any] = {
    "last_key": None,
    "last_mysql_data_timestamp": None,
    "last_mysql_extraction_time": None,
    "mysql_status": "pending",
    "mysql_rows_extracted": 0,
    "redshift_status": "pending",
    "redshift_rows_loaded": 0,
    "last_redshift_load_time": None,
    "backup_strategy": None,
    "last_run_id": None,
    "redshift_from_timestamp": None,
    "version": 0,
}


def table_definition(name: str) -> dict[str, Any]:
    """CreateTable parameters of the state table (pk/sk strings, on demand), for the
    local engine and tests; infra/state.py declares the same keys for the stack."""
    return {
        "TableName": name,
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }


def partition_key(pipeline: str, table: str) -> str:
    """The partition key of a table's items."""
    return f"{pipeline}#{table}"


def utc_now() -> str:
    """Now, UTC, ISO 8601 with seconds."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def _plain(value: Any) -> Any:
    """DynamoDB's Decimals back to int/float, recursively."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _storage_error(exc: Exception, what: str) -> Exception:
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ConditionalCheckFailedException":
            return StateConflictError(f"{what}: the item changed concurrently; retry the run")
    return StorageUnavailableError(f"DynamoDB {what}: {exc}".splitlines()[0])


def get_watermark(table: StateTable, pipeline: str, name: str) -> dict[str, Any]:
    """The watermark of a table (defaults when it was never synced)."""
    try:
        item = table.get_item(Key={"pk": partition_key(pipeline, name), "sk": WATERMARK}).get(
            "Item"
        )
    except (ClientError, BotoCoreError) as exc:
        raise _storage_error(exc, "get watermark") from None
    watermark = dict(WATERMARK_DEFAULTS)
    if item:
        watermark.update({k: _plain(v) for k, v in item.items() if k not in ("pk", "sk")})
    return watermark


def put_watermark(
    table: StateTable, pipeline: str, name: str, expected_version: int, changes: dict[str, Any]
) -> dict[str, Any]:
    """Apply `changes` to the watermark if its version is still `expected_version`."""
    current = get_watermark(table, pipeline, name)
    if current["version"] != expected_version:
        raise StateConflictError(
            f"watermark of {pipeline}/{name} is at version {current['version']}, "
            f"expected {expected_version}"
        )
    updated = {**current, **changes, "version": expected_version + 1}
    item = {"pk": partition_key(pipeline, name), "sk": WATERMARK, **updated}
    condition = (
        Attr("pk").not_exists() if expected_version == 0 else Attr("version").eq(expected_version)
    )
    try:
        table.put_item(Item=item, ConditionExpression=condition)
    except (ClientError, BotoCoreError) as exc:
        raise _storage_error(exc, "put watermark") from None
    return updated


def reset_watermark(table: StateTable, pipeline: str, name: str) -> dict[str, Any]:
    """Back to the beginning: no key, every count zero, statuses pending."""
    current = get_watermark(table, pipeline, name)
    fresh = {k: v for k, v in WATERMARK_DEFAULTS.items() if k != "version"}
    return put_watermark(table, pipeline, name, current["version"], fresh)


SUPERSEDED = "superseded"


def reset_table(
    table: StateTable, pipeline: str, name: str, now_epoch: int
) -> tuple[dict[str, Any], int]:
    """Start a table over; returns the new watermark and how many files were superseded.

    The watermark goes back to the beginning, and extracted files no run has loaded
    yet become `superseded`: the next run reads every row again, so loading them too
    would only repeat older versions (and a corrupt one would fail every load). Refused
    while a run holds the table's lock.
    """
    lock = get_lock(table, pipeline, name)
    if lock and int(lock.get("expires_at", 0)) > now_epoch:
        raise TableLockedError(
            f"table {name} is locked by run {lock.get('owner')} until {lock.get('expires_at')} "
            "(epoch seconds): reset it after that run ends"
        )
    pending = list_files(table, pipeline, name, status="extracted")
    mark_files(table, pending, SUPERSEDED)
    return reset_watermark(table, pipeline, name), len(pending)


def get_schema(table: StateTable, pipeline: str, name: str) -> dict[str, Any] | None:
    """The stored column list and name map of a table, if any."""
    try:
        item = table.get_item(Key={"pk": partition_key(pipeline, name), "sk": SCHEMA}).get("Item")
    except (ClientError, BotoCoreError) as exc:
        raise _storage_error(exc, "get schema") from None
    return _plain({k: v for k, v in item.items() if k not in ("pk", "sk")}) if item else None


def put_schema(table: StateTable, pipeline: str, name: str, schema: dict[str, Any]) -> None:
    """Store the column list and name map (names never change once stored)."""
    try:
        table.put_item(Item={"pk": partition_key(pipeline, name), "sk": SCHEMA, **schema})
    except (ClientError, BotoCoreError) as exc:
        raise _storage_error(exc, "put schema") from None


def put_load(table: StateTable, pipeline: str, name: str, load: dict[str, Any]) -> None:
    """Remember the load just submitted until its commit (or a later run's recovery)."""
    try:
        table.put_item(Item={"pk": partition_key(pipeline, name), "sk": LOAD, **load})
    except (ClientError, BotoCoreError) as exc:
        raise _storage_error(exc, "put load") from None


def get_load(table: StateTable, pipeline: str, name: str) -> dict[str, Any] | None:
    """The load submitted and not committed yet, if any."""
    key = {"pk": partition_key(pipeline, name), "sk": LOAD}
    try:
        item = table.get_item(Key=key, ConsistentRead=True).get("Item")
    except (ClientError, BotoCoreError) as exc:
        raise _storage_error(exc, "get load") from None
    return _plain({k: v for k, v in item.items() if k not in ("pk", "sk")}) if item else None


def delete_load(table: StateTable, pipeline: str, name: str) -> None:
    """Forget the submitted load (committed, or known to have failed)."""
    try:
        table.delete_item(Key={"pk": partition_key(pipeline, name), "sk": LOAD})
    except (ClientError, BotoCoreError) as exc:
        raise _storage_error(exc, "delete load") from None


def file_sort_key(run_id: str, chunk: int) -> str:
    """`FILE#<run>#<chunk>`: one item per file, whatever the retries of its step."""
    return f"{FILE_PREFIX}{run_id}#{chunk:06d}"


def put_files(table: StateTable, pipeline: str, name: str, files: list[dict[str, Any]]) -> None:
    """Record extracted files, one item each (a retried run overwrites its own items)."""
    pk = partition_key(pipeline, name)
    try:
        with table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch:
            for file in files:
                batch.put_item(Item={"pk": pk, **file})
    except (ClientError, BotoCoreError) as exc:
        raise _storage_error(exc, "put files") from None


def list_files(
    table: StateTable,
    pipeline: str,
    name: str,
    status: str | None = None,
    run_id: str | None = None,
) -> list[dict[str, Any]]:
    """Files of a table in extraction order, optionally only those with `status`, or
    of one run."""
    pk = partition_key(pipeline, name)
    files: list[dict[str, Any]] = []
    prefix = FILE_PREFIX if run_id is None else f"{FILE_PREFIX}{run_id}#"
    kwargs: dict[str, Any] = {
        "KeyConditionExpression": Key("pk").eq(pk) & Key("sk").begins_with(prefix),
        "ConsistentRead": True,
    }
    if status:
        kwargs["FilterExpression"] = Attr("status").eq(status)
    try:
        while True:
            page = table.query(**kwargs)
            files.extend(_plain(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return sorted(files, key=lambda f: (str(f.get("extracted_at", "")), f["sk"]))
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    except (ClientError, BotoCoreError) as exc:
        raise _storage_error(exc, "list files") from None


def mark_files(table: StateTable, files: list[dict[str, Any]], status: str, **extra: Any) -> None:
    """Set the status of recorded files (e.g. `loaded`)."""
    try:
        with table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch:
            for file in files:
                batch.put_item(Item={**file, "status": status, **extra})
    except (ClientError, BotoCoreError) as exc:
        raise _storage_error(exc, "mark files") from None


def put_run(
    table: StateTable, pipeline: str, name: str, run_id: str, record: dict[str, Any]
) -> None:
    """Write (or overwrite) the history record of one run of one table."""
    item = {"pk": partition_key(pipeline, name), "sk": f"{RUN_PREFIX}{run_id}"}
    keys = {"pipeline": pipeline, "table": name, "run_id": run_id}
    try:
        table.put_item(Item={**item, **record, **keys})
    except (ClientError, BotoCoreError) as exc:
        raise _storage_error(exc, "put run") from None


def update_run(
    table: StateTable,
    pipeline: str,
    name: str,
    run_id: str,
    changes: dict[str, Any],
    *,
    prefix: str = RUN_PREFIX,
) -> dict[str, Any]:
    """Set `changes` on a run's record (created with them if it has none); returns the
    record as it is now. One UpdateItem: no read-modify-write window. `prefix`
    RECONCILE_PREFIX: a reconciliation's record instead."""
    key = {"pk": partition_key(pipeline, name), "sk": f"{prefix}{run_id}"}
    values = {**changes, "pipeline": pipeline, "table": name, "run_id": run_id}
    names = {f"#a{i}": field for i, field in enumerate(values)}
    expression = "SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(values)))
    try:
        answer = table.update_item(
            Key=key,
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={f":v{i}": v for i, v in enumerate(values.values())},
            ReturnValues="ALL_NEW",
        )
    except (ClientError, BotoCoreError) as exc:
        raise _storage_error(exc, "update run") from None
    return dict(_plain(answer.get("Attributes") or {}))


def get_run(table: StateTable, pipeline: str, name: str, run_id: str) -> dict[str, Any] | None:
    """The history record of one run of one table, or None."""
    key = {"pk": partition_key(pipeline, name), "sk": f"{RUN_PREFIX}{run_id}"}
    try:
        item = table.get_item(Key=key, ConsistentRead=True).get("Item")
    except (ClientError, BotoCoreError) as exc:
        raise _storage_error(exc, "get run") from None
    return _plain(item) if item else None


def put_plan(
    table: StateTable, pipeline: str, name: str, run_id: str, plan: dict[str, Any], now_epoch: int
) -> None:
    """Keep what a run's plan decided (its schema), read back by the run's later steps."""
    item: dict[str, str | int] = {
        "pk": partition_key(pipeline, name),
        "sk": f"{PLAN_PREFIX}{run_id}",
        "run_id": run_id,
        "expires_at": now_epoch + PLAN_TTL_SECONDS,
    }
    try:
        table.put_item(Item={**item, **plan})
    except (ClientError, BotoCoreError) as exc:
        raise _storage_error(exc, "put plan") from None


def get_plan(table: StateTable, pipeline: str, name: str, run_id: str) -> dict[str, Any] | None:
    """The plan a run recorded with `put_plan`, or None."""
    key = {"pk": partition_key(pipeline, name), "sk": f"{PLAN_PREFIX}{run_id}"}
    try:
        item = table.get_item(Key=key, ConsistentRead=True).get("Item")
    except (ClientError, BotoCoreError) as exc:
        raise _storage_error(exc, "get plan") from None
    return _plain(item) if item else None


def get_runs(
    table: StateTable, pipeline: str, names: list[str], run_id: str, *, prefix: str = RUN_PREFIX
) -> dict[str, dict[str, Any]]:
    """The records of one run for many tables (BatchGetItem, 100 keys a call), by table."""
    keys = [
        {"pk": partition_key(pipeline, n), "sk": f"{prefix}{run_id}"}
        for n in dict.fromkeys(names)  # BatchGetItem refuses a key twice
    ]
    found: dict[str, dict[str, Any]] = {}
    # The Table resource's own client: it (de)serializes attribute values as the
    # resource does.
    client = table.meta.client
    try:
        for start in range(0, len(keys), 100):
            request: dict[str, Any] = {
                table.name: {"Keys": keys[start : start + 100], "ConsistentRead": True}
            }
            while request:
                answer = client.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(table.name, []):
                    record = _plain(item)
                    found[str(record["table"])] = record
                request = answer.get("UnprocessedKeys") or {}
    except (ClientError, BotoCoreError) as exc:
        raise _storage_error(exc, "get runs") from None
    return found


def acquire_lock(
    table: StateTable, pipeline: str, name: str, owner: str, now_epoch: int, lease_seconds: int
) -> dict[str, Any]:
    """Take the table's lock for `owner` (an execution name) until now + lease.

    A conditional write: it succeeds when nobody holds the lock, when the holder's
    lease has expired (a crashed execution), or when `owner` already holds it (a
    retried step). Otherwise TableLockedError names the holder.
    """
    item: dict[str, str | int] = {
        "pk": partition_key(pipeline, name),
        "sk": LOCK,
        "owner": owner,
        "acquired_at": now_epoch,
        "expires_at": now_epoch + lease_seconds,
    }
    condition = Attr("pk").not_exists() | Attr("expires_at").lt(now_epoch) | Attr("owner").eq(owner)
    try:
        table.put_item(Item=item, ConditionExpression=condition)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise _storage_error(exc, "acquire lock") from None
        holder = get_lock(table, pipeline, name) or {}
        raise TableLockedError(
            f"table {name} locked by {holder.get('owner', 'another execution')} "
            f"until {holder.get('expires_at', '?')} (epoch seconds)"
        ) from None
    except BotoCoreError as exc:
        raise _storage_error(exc, "acquire lock") from None
    return item


def get_lock(table: StateTable, pipeline: str, name: str) -> dict[str, Any] | None:
    """The lock item of a table, if any."""
    try:
        item = table.get_item(
            Key={"pk": partition_key(pipeline, name), "sk": LOCK}, ConsistentRead=True
        ).get("Item")
    except (ClientError, BotoCoreError) as exc:
        raise _storage_error(exc, "get lock") from None
    return _plain(item) if item else None


def release_lock(table: StateTable, pipeline: str, name: str, owner: str) -> bool:
    """Release the lock if `owner` holds it; False when someone else does (or nobody)."""
    try:
        table.delete_item(
            Key={"pk": partition_key(pipeline, name), "sk": LOCK},
            ConditionExpression=Attr("owner").eq(owner),
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise _storage_error(exc, "release lock") from None
    except BotoCoreError as exc:
        raise _storage_error(exc, "release lock") from None
    return True


def list_runs(table: StateTable, pipeline: str, name: str, limit: int = 20) -> list[dict[str, Any]]:
    """The newest run records of a table (run ids sort by time)."""
    try:
        page = table.query(
            KeyConditionExpression=Key("pk").eq(partition_key(pipeline, name))
            & Key("sk").begins_with(RUN_PREFIX),
            ScanIndexForward=False,
            Limit=limit,
        )
    except (ClientError, BotoCoreError) as exc:
        raise _storage_error(exc, "list runs") from None
    return [_plain(item) for item in page.get("Items", [])]
