"""Loading into Redshift: one Data API batch, which Redshift runs as one transaction.

The batch creates the target table if needed, stages the manifest's Parquet files
with COPY, fails the transaction when the staged row count differs from the rows
extracted, replaces target rows by primary key with the newest version of each key
(a key can appear in several files when several runs are loaded together), and
records the load (the set of files it loaded) in the table's own ledger. Statements
are named; results are read by name. Waiting for the statement is the state
machine's job (its Wait states), not a sleeping Lambda's; the Load function, which
submitted it, describes it between waits (the Data API lets only the submitter).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from myshift.clients import RedshiftDataClient, S3Client
from myshift.config import TargetConfig
from myshift.errors import CountMismatchError, LoadError, WarehouseUnavailableError
from myshift.identifiers import quote_redshift, quote_redshift_table, sql_string

STAGE_TABLE = "myshift_stage"
DEFAULT_COPY_ROLE = "default"


def copy_role(target: TargetConfig, stack_copy_role: str | None) -> str | None:
    """The role COPY reads S3 as: the pipeline's `target.copy_role_arn`, else the stack's
    COPY role; None: the warehouse's default IAM role (`IAM_ROLE default`)."""
    return target.copy_role_arn or stack_copy_role or None


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


def put_manifest(s3: S3Client, bucket: str, key: str, files: list[dict[str, Any]]) -> None:
    """Write the manifest object."""
    body = json.dumps(manifest(bucket, files)).encode()
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    except (ClientError, BotoCoreError) as exc:
        raise WarehouseUnavailableError(
            f"S3 put of manifest {key}: {exc}".splitlines()[0]
        ) from None


@dataclass(frozen=True)
class Statement:
    """One SQL statement of a batch, with the name its result is read by."""

    name: str
    sql: str


# The statements a load batch always has; the rest of the Data API's 40 may add columns.
MAX_BATCH_STATEMENTS = 40
FIXED_LOAD_STATEMENTS = 8
MAX_ADDED_COLUMNS_IN_LOAD = MAX_BATCH_STATEMENTS - FIXED_LOAD_STATEMENTS


def ledger_name(table: str) -> str:
    """The table's own ledger (`myshift_ledger_<table>`, or a digest for a long name).

    One per table: two loads of different tables touch no table in common, so neither
    can abort the other under Redshift's SERIALIZABLE isolation (error 1023), which a
    shared ledger, read and written by every load, invites.
    """
    name = f"myshift_ledger_{table}"
    if len(name.encode("utf-8")) <= LEDGER_NAME_BYTES:
        return name
    return f"myshift_ledger_{hashlib.sha256(table.encode('utf-8')).hexdigest()[:24]}"


def ledger_table(schema: str, table: str) -> str:
    """The quoted ledger table of a target table."""
    return quote_redshift_table(schema, ledger_name(table))


def create_ledger_sql(ledger: str) -> str:
    """CREATE TABLE IF NOT EXISTS of a (quoted) ledger: one row per load, by `load_id`."""
    return (
        f"CREATE TABLE IF NOT EXISTS {ledger} (load_id VARCHAR(64) NOT NULL, "
        "run_id VARCHAR(128) NOT NULL, files INTEGER NOT NULL, row_count BIGINT NOT NULL, "
        "loaded_at TIMESTAMP NOT NULL)"
    )


# 63 bytes: what the local stand-in (PostgreSQL) keeps of a name; Redshift allows 127.
LEDGER_NAME_BYTES = 63


def load_id(s3_keys: list[str]) -> str:
    """What a load is known by in the ledger: the set of files it loads (a digest).

    The same files loaded again, by a retried submission or by a later run that lost
    track of the first load, change nothing, whatever the write mode.
    """
    return hashlib.sha256("\n".join(sorted(s3_keys)).encode("utf-8")).hexdigest()


def load_batch(
    target: TargetTable,
    *,
    manifest_url: str,
    copy_role_arn: str | None,
    expected_rows: int,
    load_key: str,
    run_id: str,
    file_count: int,
    write_mode: str = "merge",
    add_columns: list[dict[str, Any]] | None = None,
    filled_columns: list[str] | None = None,
) -> list[Statement]:
    """The named statements of one load, one transaction in Redshift.

    `add_columns`: layout columns the Redshift table gains in this transaction;
    `filled_columns`: target columns some staged files lack (written before the
    columns existed), filled with NULL by COPY's FILLRECORD.

    Every statement that changes the target is guarded by the table's ledger: a load
    of files already recorded (`load_key`) changes nothing. Keys are not declared as
    PRIMARY KEY: Redshift would not enforce them, and it refuses to widen a VARCHAR
    key column that is declared.
    """
    adds = add_columns or []
    if len(adds) > MAX_ADDED_COLUMNS_IN_LOAD:
        raise LoadError(
            f"{target.name}: {len(adds)} new columns do not fit one load batch "
            f"(at most {MAX_ADDED_COLUMNS_IN_LOAD}); they are added before the load"
        )
    stage = quote_redshift(STAGE_TABLE)
    ledger = ledger_table(target.schema, target.name)
    role = "default" if not copy_role_arn else sql_string(copy_role_arn)
    columns = ", ".join(quote_redshift(c) for c in target.column_names)
    pk = ", ".join(quote_redshift(c) for c in target.primary_key)
    match = " AND ".join(
        f"{target.qualified}.{quote_redshift(c)} = {stage}.{quote_redshift(c)}"
        for c in target.primary_key
    )
    not_loaded = f"NOT EXISTS (SELECT 1 FROM {ledger} WHERE load_id = {sql_string(load_key)})"  # noqa: S608
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
    filled = [quote_redshift(c["target"]) for c in adds]
    filled += [q for q in map(quote_redshift, filled_columns or []) if q not in filled]
    if filled:
        # Files written before the columns existed are loaded with them (FILLRECORD:
        # NULL); the same row re-read since has the same cursor and the real values.
        order += ", " + " + ".join(f"CASE WHEN {c} IS NULL THEN 1 ELSE 0 END" for c in filled)
    newest = (
        f"INSERT INTO {target.qualified} ({columns}) SELECT {columns} FROM ("  # noqa: S608
        f"SELECT *, ROW_NUMBER() OVER (PARTITION BY {pk} ORDER BY {order}) AS myshift_rn "
        f"FROM {stage}) AS newest WHERE myshift_rn = 1 AND {not_loaded}"
    )
    if write_mode == "merge":
        replaced = [
            Statement(
                "delete",
                f"DELETE FROM {target.qualified} USING {stage} WHERE {match} AND {not_loaded}",  # noqa: S608
            )
        ]
        insert = newest
    elif write_mode == "append":
        replaced = []
        insert = (
            f"INSERT INTO {target.qualified} ({columns}) "  # noqa: S608
            f"SELECT {columns} FROM {stage} WHERE {not_loaded}"
        )
    elif write_mode == "replace":
        # Only this run's files are staged (a whole-table extraction). A row whose cursor
        # moved while the chunks were read can be in two of them: keep one version.
        replaced = [
            Statement("delete", f"DELETE FROM {target.qualified} WHERE {not_loaded}")  # noqa: S608
        ]
        insert = newest
    else:
        raise LoadError(f"unknown write mode {write_mode!r}")
    fill = " FILLRECORD" if filled else ""
    return [
        # New source columns join in the same transaction as their first rows.
        *(Statement(f"add {c['target']}", add_column_sql(target.qualified, c)) for c in adds),
        Statement(
            "create_table", f"CREATE TABLE IF NOT EXISTS {target.qualified} ({target.columns_ddl})"
        ),
        Statement("create_ledger", create_ledger_sql(ledger)),
        # The files' columns, not LIKE the target: the target may hold a column of its own
        # (`_myshift_deleted_at`, deletes: soft), and COPY maps columns by position.
        Statement("stage", f"CREATE TEMP TABLE {stage} ({target.columns_ddl})"),
        Statement(
            "copy",
            f"COPY {stage} FROM {sql_string(manifest_url)} IAM_ROLE {role} "
            f"FORMAT AS PARQUET MANIFEST{fill}",
        ),
        Statement("check", check),
        *replaced,
        Statement("insert", insert),
        Statement(
            "ledger",
            f"INSERT INTO {ledger} SELECT {sql_string(load_key)}, {sql_string(run_id)}, "
            f"{int(file_count)}, {int(expected_rows)}, GETDATE() WHERE {not_loaded}",
        ),
    ]


def add_column_sql(qualified_table: str, column: dict[str, Any]) -> str:
    """`ALTER TABLE ... ADD COLUMN` of a stored layout column (one column a statement)."""
    return f"ALTER TABLE {qualified_table} ADD COLUMN {column['ddl']}"


def widen_sql(qualified_table: str, column: dict[str, Any]) -> str:
    """`ALTER TABLE ... ALTER COLUMN ... TYPE VARCHAR(n)`: outside any transaction."""
    return (
        f"ALTER TABLE {qualified_table} ALTER COLUMN {quote_redshift(column['target'])} "
        f"TYPE {column['redshift_type']}"
    )


def drop_primary_key_sql(qualified_table: str, table: str) -> str:
    """Drop the PRIMARY KEY constraint tables created by earlier versions declared
    (named `<table>_pkey`, Redshift's default): it blocks widening a key column."""
    return f"ALTER TABLE {qualified_table} DROP CONSTRAINT {quote_redshift(table + '_pkey')}"


def prepare_statements(schema: str) -> list[str]:
    """The target schema, created once per run before any table loads (concurrent
    `CREATE SCHEMA IF NOT EXISTS` of one schema in parallel transactions fail)."""
    return [f"CREATE SCHEMA IF NOT EXISTS {quote_redshift(schema)}"]


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


def submit(
    redshift_data: RedshiftDataClient, target: TargetConfig, sqls: list[str], name: str
) -> str:
    """Submit a batch (one transaction); returns the statement id."""
    return _submitted(
        redshift_data.batch_execute_statement,
        "load",
        Sqls=sqls,
        StatementName=name[:500],
        ClientToken=client_token(name, sqls),
        **connection_params(target),
    )


def submit_single(
    redshift_data: RedshiftDataClient, target: TargetConfig, sql: str, name: str
) -> str:
    """Submit one statement outside any transaction block; returns the statement id."""
    return _submitted(
        redshift_data.execute_statement,
        "statement",
        Sql=sql,
        StatementName=name[:500],
        ClientToken=client_token(name, [sql]),
        **connection_params(target),
    )


def describe(redshift_data: RedshiftDataClient, statement_id: str) -> dict[str, Any]:
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


def sub_statement_id(statement_id: str, names: list[str], name: str) -> str:
    """The Data API id of the batch's statement called `name` (`<id>:<1-based index>`)."""
    return f"{statement_id}:{names.index(name) + 1}"


def result_rows(description: dict[str, Any], names: list[str]) -> dict[str, int]:
    """Each named statement's ResultRows in a finished batch (`names` as submitted)."""
    subs = description.get("SubStatements", [])
    if len(subs) != len(names):
        raise LoadError(f"the batch has {len(subs)} sub-statements, {len(names)} were submitted")
    return {name: int(sub.get("ResultRows", -1)) for name, sub in zip(names, subs, strict=True)}


def verified_counts(
    description: dict[str, Any], expected_rows: int, names: list[str]
) -> LoadCounts:
    """Counts of a FINISHED load, read by statement name; staged must equal extracted."""
    if description.get("Status") != "FINISHED":
        raise failure_of(description)
    rows = result_rows(description, names)
    counts = LoadCounts(
        rows_staged=rows["copy"],
        rows_replaced=max(0, rows.get("delete", 0)),
        rows_inserted=rows["insert"],
        already_loaded=rows["ledger"] == 0,
    )
    if counts.rows_staged != expected_rows:
        raise CountMismatchError(
            f"Redshift staged {counts.rows_staged} rows but {expected_rows} were extracted"
        )
    return counts


def field_value(field: Mapping[str, Any]) -> Any:
    """A Data API typed value (`{"longValue": 1}`, `{"isNull": true}`, ...) as Python."""
    if field.get("isNull"):
        return None
    return next(iter(field.values()))


def statement_rows(redshift_data: RedshiftDataClient, statement_id: str) -> list[list[Any]]:
    """Every row of a finished statement's result (GetStatementResult, page by page).

    Only the identity that ran the statement may read it (see `follow_statement`).
    """
    rows: list[list[Any]] = []
    kwargs: dict[str, Any] = {"Id": statement_id}
    try:
        while True:
            page = redshift_data.get_statement_result(**kwargs)
            rows.extend([field_value(f) for f in record] for record in page["Records"])
            if not page.get("NextToken"):
                return rows
            kwargs["NextToken"] = page["NextToken"]
    except (ClientError, BotoCoreError) as exc:
        raise WarehouseUnavailableError(f"Redshift Data API: {exc}".splitlines()[0]) from None


def batch_rows(redshift_data: RedshiftDataClient, statement_id: str) -> list[list[list[Any]]]:
    """The rows of each sub-statement of a finished batch of SELECTs, in order."""
    description = describe(redshift_data, statement_id)
    if description.get("Status") != "FINISHED":
        raise failure_of(description)
    subs = description.get("SubStatements") or []
    return [statement_rows(redshift_data, str(sub["Id"])) for sub in subs]
