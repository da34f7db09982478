"""Loading into Redshift: one Data API batch, which Redshift runs as one transaction.

The batch creates the target table if needed, stages the manifest's Parquet files
with COPY, fails the transaction when the staged row count differs from the rows
extracted, replaces target rows by primary key with the newest version of each key
(a key can appear in several files when several runs are loaded together), and
records the load in a ledger table. Waiting for the statement is the state
machine's job (Wait/Choice over DescribeStatement), not a sleeping Lambda's.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from myshift.config import TargetConfig
from myshift.errors import CountMismatchError, LoadError, WarehouseUnavailableError
from myshift.identifiers import quote_redshift, quote_redshift_table, sql_string

STAGE_TABLE = "myshift_stage"
LEDGER_TABLE = "myshift_ledger"
DEFAULT_COPY_ROLE = "default"


@dataclass(frozen=True)
class TargetTable:
    """The Redshift table a source table lands in, with what the load needs to know."""

    schema: str
    name: str
    columns_ddl: str
    column_names: list[str]
    primary_key: list[str]
    cursor: str

    @property
    def qualified(self) -> str:
        return quote_redshift_table(self.schema, self.name)


def manifest(bucket: str, files: list[dict[str, Any]]) -> dict[str, Any]:
    """A COPY manifest; Parquet needs `meta.content_length` on every entry."""
    return {
        "entries": [
            {
                "url": f"s3://{bucket}/{file['s3_key']}",
                "mandatory": True,
                "meta": {"content_length": int(file["bytes"])},
            }
            for file in files
        ]
    }


def put_manifest(s3: Any, bucket: str, key: str, files: list[dict[str, Any]]) -> None:
    """Write the manifest object."""
    body = json.dumps(manifest(bucket, files)).encode()
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    except (ClientError, BotoCoreError) as exc:
        raise WarehouseUnavailableError(
            f"S3 put of manifest {key}: {exc}".splitlines()[0]
        ) from None


def load_statements(
    target: TargetTable,
    *,
    manifest_url: str,
    copy_role_arn: str | None,
    expected_rows: int,
    run_id: str,
    source_table: str,
    file_count: int,
    write_mode: str = "merge",
    add_columns: list[str] | None = None,
    filled_columns: list[str] | None = None,
) -> list[str]:
    """The SQL of one load, in order (positions are fixed: see the *_STATEMENT constants).

    `filled_columns`: target columns some staged files lack (written before the columns
    existed); they are filled with NULL, like the columns `add_columns` adds.

    Every statement that changes the target is guarded by the ledger: a load whose run
    is already recorded changes nothing (a re-submitted batch is a no-op).
    """
    stage = quote_redshift(STAGE_TABLE)
    ledger = quote_redshift_table(target.schema, LEDGER_TABLE)
    role = "default" if not copy_role_arn else sql_string(copy_role_arn)
    columns = ", ".join(quote_redshift(c) for c in target.column_names)
    pk = ", ".join(quote_redshift(c) for c in target.primary_key)
    match = " AND ".join(
        f"{target.qualified}.{quote_redshift(c)} = {stage}.{quote_redshift(c)}"
        for c in target.primary_key
    )
    not_loaded = (
        f"NOT EXISTS (SELECT 1 FROM {ledger} WHERE run_id = {sql_string(run_id)} "  # noqa: S608
        f"AND table_name = {sql_string(source_table)})"
    )
    # A CAST of a non-constant string fails the transaction with a readable message
    # when the counts differ (a constant would be folded and fail at plan time).
    check = (
        f"SELECT CAST(CASE WHEN COUNT(*) = {int(expected_rows)} THEN '1' "  # noqa: S608
        f"ELSE 'myshift: staged ' || COUNT(*) || ' rows but extracted {int(expected_rows)}' "
        f"END AS INTEGER) FROM {stage}"
    )
    # The newest staged version of each key. A NULL cursor sorts last: such a row is
    # only extracted before the cursor is set (see plan.py), so any version with a
    # cursor is newer. (DESC alone puts NULLs first in Redshift and PostgreSQL.)
    order = f"{quote_redshift(target.cursor)} DESC NULLS LAST"
    added = added_column_names(add_columns or [])
    added += [q for q in map(quote_redshift, filled_columns or []) if q not in added]
    if added:
        # Files written before the columns existed are loaded with them (FILLRECORD:
        # NULL); the same row re-read since has the same cursor and the real values.
        filled = " + ".join(f"CASE WHEN {c} IS NULL THEN 1 ELSE 0 END" for c in added)
        order += f", {filled}"
    newest = (
        f"INSERT INTO {target.qualified} ({columns}) SELECT {columns} FROM ("  # noqa: S608
        f"SELECT *, ROW_NUMBER() OVER (PARTITION BY {pk} ORDER BY {order}) AS myshift_rn "
        f"FROM {stage}) AS newest WHERE myshift_rn = 1 AND {not_loaded}"
    )
    fill = " FILLRECORD" if added else ""
    if write_mode == "merge":
        delete = f"DELETE FROM {target.qualified} USING {stage} WHERE {match} AND {not_loaded}"  # noqa: S608
        insert = newest
    elif write_mode == "append":
        # A no-op that keeps the statement positions fixed.
        delete = f"DELETE FROM {stage} WHERE FALSE"  # noqa: S608
        insert = (
            f"INSERT INTO {target.qualified} ({columns}) "  # noqa: S608
            f"SELECT {columns} FROM {stage} WHERE {not_loaded}"
        )
    elif write_mode == "replace":
        # Only this run's files are staged (a whole-table extraction). A row whose cursor
        # moved while the chunks were read can be in two of them: keep one version.
        delete = f"DELETE FROM {target.qualified} WHERE {not_loaded}"  # noqa: S608
        insert = newest
    else:
        raise LoadError(f"unknown write mode {write_mode!r}")
    return [
        # New source columns join in the same transaction as their first rows.
        *(add_columns or []),
        f"CREATE TABLE IF NOT EXISTS {target.qualified} ({target.columns_ddl}, PRIMARY KEY ({pk}))",
        f"CREATE TEMP TABLE {stage} (LIKE {target.qualified})",
        f"COPY {stage} FROM {sql_string(manifest_url)} IAM_ROLE {role} "
        f"FORMAT AS PARQUET MANIFEST{fill}",
        check,
        delete,
        insert,
        f"INSERT INTO {ledger} SELECT {sql_string(run_id)}, {sql_string(source_table)}, "
        f"{int(file_count)}, {int(expected_rows)}, GETDATE() "
        f"WHERE {not_loaded}",
    ]


_ADDED_COLUMN = re.compile(r'\bADD COLUMN ("(?:[^"]|"")+")')


def added_column_names(add_columns: list[str]) -> list[str]:
    """The quoted names of the columns that `evolve.pending_ddl`'s ADD COLUMNs add."""
    names = []
    for sql in add_columns:
        match = _ADDED_COLUMN.search(sql)
        if match is None:
            raise LoadError(f"not an ADD COLUMN statement: {sql[:200]}")
        names.append(match.group(1))
    return names


# Positions from the end: ADD COLUMN statements may come first.
COPY_STATEMENT = -5
DELETE_STATEMENT = -3
INSERT_STATEMENT = -2
LEDGER_STATEMENT = -1


def prepare_statements(schema: str) -> list[str]:
    """The schema and the ledger, created once per run before any table loads.

    Separate from the per-table batches because concurrent `CREATE ... IF NOT EXISTS`
    of the same object in parallel transactions fail (inter-table runs load at once).
    """
    ledger = quote_redshift_table(schema, LEDGER_TABLE)
    return [
        f"CREATE SCHEMA IF NOT EXISTS {quote_redshift(schema)}",
        f"CREATE TABLE IF NOT EXISTS {ledger} (run_id VARCHAR(128) NOT NULL, "
        f"table_name VARCHAR(256) NOT NULL, files INTEGER NOT NULL, "
        f"row_count BIGINT NOT NULL, loaded_at TIMESTAMP NOT NULL)",
    ]


def connection_params(target: TargetConfig) -> dict[str, Any]:
    """Data API parameters naming the database and how to authenticate."""
    params: dict[str, Any] = {"Database": target.database}
    if target.workgroup:
        params["WorkgroupName"] = target.workgroup
    if target.cluster_identifier:
        params["ClusterIdentifier"] = target.cluster_identifier
    if target.secret_arn:
        params["SecretArn"] = target.secret_arn
    elif target.db_user:
        params["DbUser"] = target.db_user
    return params


def _submitted(call: Any, what: str, **kwargs: Any) -> str:
    """Run a Data API submission; refusals are terminal, transport errors transient."""
    try:
        return str(call(**kwargs)["Id"])
    except (ClientError, BotoCoreError) as exc:
        code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
        if code in ("ValidationException", "ResourceNotFoundException"):
            raise LoadError(
                f"Redshift Data API refused the {what}: {exc}".splitlines()[0]
            ) from None
        raise WarehouseUnavailableError(f"Redshift Data API: {exc}".splitlines()[0]) from None


def client_token(name: str, sqls: list[str]) -> str:
    """The Data API idempotency token of a submission: its name and SQL, hashed.

    A submit retried after its reply was lost (a Lambda timeout, a retried task) gets
    the statement already running instead of a second one racing it. A submission
    meant to run again must differ in name (the prepare's attempt number does).
    """
    digest = hashlib.sha256(json.dumps([name, *sqls]).encode("utf-8"))
    return digest.hexdigest()  # 64 characters: the API's maximum


def submit(redshift_data: Any, target: TargetConfig, sqls: list[str], name: str) -> str:
    """Submit a batch (one transaction); returns the statement id."""
    return _submitted(
        redshift_data.batch_execute_statement,
        "load",
        Sqls=sqls,
        StatementName=name[:500],
        ClientToken=client_token(name, sqls),
        **connection_params(target),
    )


def submit_single(redshift_data: Any, target: TargetConfig, sql: str, name: str) -> str:
    """Submit one statement outside any transaction block; returns the statement id."""
    return _submitted(
        redshift_data.execute_statement,
        "statement",
        Sql=sql,
        StatementName=name[:500],
        ClientToken=client_token(name, [sql]),
        **connection_params(target),
    )


def describe(redshift_data: Any, statement_id: str) -> dict[str, Any]:
    """DescribeStatement, with transport errors classified."""
    try:
        return dict(redshift_data.describe_statement(Id=statement_id))
    except (ClientError, BotoCoreError) as exc:
        raise WarehouseUnavailableError(f"Redshift Data API: {exc}".splitlines()[0]) from None


def failure_of(description: dict[str, Any]) -> LoadError:
    """The database's error of a failed statement, as a LoadError."""
    error = description.get("Error") or "no error text"
    for sub in description.get("SubStatements", []):
        if sub.get("Status") == "FAILED" and sub.get("Error"):
            error = f"{sub['Error']} (in: {str(sub.get('QueryString', ''))[:200]})"
            break
    status = description.get("Status", "UNKNOWN")
    return LoadError(f"Redshift load {status}: {error}".replace("\n", " "))


@dataclass(frozen=True)
class LoadCounts:
    """What one finished load did, read from its sub-statements."""

    rows_staged: int
    rows_replaced: int
    rows_inserted: int
    already_loaded: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form for the state machine payload."""
        return dict(self.__dict__)


def verified_counts(description: dict[str, Any], expected_rows: int) -> LoadCounts:
    """Counts of a FINISHED load; staged must equal extracted."""
    if description.get("Status") != "FINISHED":
        raise failure_of(description)
    subs = description.get("SubStatements", [])
    if len(subs) < -COPY_STATEMENT + 2:
        raise LoadError(f"load statement has {len(subs)} sub-statements, expected more")
    counts = LoadCounts(
        rows_staged=int(subs[COPY_STATEMENT].get("ResultRows", -1)),
        rows_replaced=int(subs[DELETE_STATEMENT].get("ResultRows", -1)),
        rows_inserted=int(subs[INSERT_STATEMENT].get("ResultRows", -1)),
        already_loaded=int(subs[LEDGER_STATEMENT].get("ResultRows", -1)) == 0,
    )
    if counts.rows_staged != expected_rows:
        raise CountMismatchError(
            f"Redshift staged {counts.rows_staged} rows but {expected_rows} were extracted"
        )
    return counts
