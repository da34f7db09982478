"""`myshift doctor`: what a new deployment needs, checked from inside it.

The doctor workflow (`statemachines/doctor.asl.json`) asks each function to check,
with its own role and from its own network, what a run will need from it:

- Plan: MySQL reachable (and over TLS where configured), every pipeline table
  readable and visible in information_schema, `information_schema.innodb_trx`
  readable, the state table writable;
- Extract: MySQL reachable from its network, the canary Parquet file (every column
  type at its edges, `myshift.canary`) and its manifest written to the bucket;
- Load: the canary COPYed with the pipeline's COPY role into a temporary table and
  every value read back and compared exactly; the database user's privileges on the
  target schema, tables and ledgers;
- State: the state table readable and writable.

Each check is one row: what, pass / warn / fail, the detail, what to do. A check that
fails is a row, not an exception: the others still run and the operator sees them all.
Secrets never appear in a row (errors are the drivers' and AWS's messages, which name
users and resources, not passwords).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import pymysql
from botocore.exceptions import BotoCoreError, ClientError

from myshift import canary, checksum, load
from myshift.clients import RedshiftDataClient, S3Client, StateTable
from myshift.config import PipelineConfig
from myshift.errors import MyshiftError
from myshift.extract import write_table
from myshift.identifiers import quote_mysql_table, quote_redshift, sql_string
from myshift.schema import redshift_columns_ddl
from myshift.source import query_all

Status = Literal["pass", "warn", "fail"]
CANARY_TABLE = "myshift_doctor_canary"
# Rows naming failing tables: enough to act on, small enough for a workflow payload.
MAX_NAMED = 10
DOCTOR_TTL_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Check:
    """One row of the doctor's report."""

    check: str
    status: Status
    detail: str
    remedy: str = ""
    by: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _first_line(error: BaseException | str) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[0][:500] if lines else type(error).__name__


def _aws_error(exc: ClientError | BotoCoreError) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {_first_line(error.get('Message', ''))}"
    return _first_line(exc)


def _named(names: Sequence[str]) -> str:
    shown = ", ".join(names[:MAX_NAMED])
    return shown + (f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else "")


def doctor_prefix(data_prefix: str, run_id: str) -> str:
    """Where the doctor writes its probe objects and the canary (expired by lifecycle)."""
    return f"{data_prefix}/_doctor/{run_id}/"


# --- AWS calls each function makes ----------------------------------------------------


def probe_state_table(table: StateTable, *, function: str, run_id: str, now_epoch: int) -> Check:
    """Write and read an item of the state table, as the function's role."""
    key = {"pk": f"DOCTOR#{run_id}", "sk": function}
    what = f"{function}: DynamoDB state table read/write"
    try:
        table.put_item(Item={**key, "expires_at": now_epoch + DOCTOR_TTL_SECONDS})
        table.get_item(Key=key, ConsistentRead=True)
    except (ClientError, BotoCoreError) as exc:
        return Check(
            what,
            "fail",
            _aws_error(exc),
            "give the function's role dynamodb:PutItem/GetItem on the state table "
            "(redeploy the stack)",
            function,
        )
    return Check(what, "pass", f"table {table.name}", by=function)


def probe_bucket_write(s3: S3Client, *, bucket: str, key: str, function: str) -> Check:
    """Put an object under the doctor's prefix, as the function's role."""
    what = f"{function}: S3 write to the data bucket"
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=b"myshift doctor\n")
    except (ClientError, BotoCoreError) as exc:
        return Check(
            what,
            "fail",
            _aws_error(exc),
            "give the function's role s3:PutObject on the data prefix (redeploy the stack)",
            function,
        )
    return Check(what, "pass", f"s3://{bucket}/{key}", by=function)


# --- the source, from the function's own network ---------------------------------------


def source_checks(
    connect: Callable[[], pymysql.Connection],
    pipeline: PipelineConfig,
    *,
    function: str,
    tables: bool = True,
) -> list[Check]:
    """MySQL reachable (TLS as configured); with `tables`, the grants a run needs."""
    source = pipeline.source
    where = f"{source.user}@{source.host}:{source.port}"
    try:
        conn = connect()
        cipher = query_all(conn, "SHOW SESSION STATUS LIKE 'Ssl_cipher'")
    except Exception as exc:
        # Reading the secret (Powertools' GetParameterError), the TLS handshake and the
        # driver all fail differently; whatever it is, it is this check's answer.
        return [
            Check(
                f"{function}: MySQL connection",
                "fail",
                f"{where}: {_first_line(exc)}",
                "check the host, port, security groups and route from the functions' "
                "subnets, the user and its password (secret)",
                function,
            )
        ]
    used = str(cipher[0][1]) if cipher and cipher[0][1] else ""
    mode = source.tls.mode
    if mode != "disabled" and not used:
        connection = Check(
            f"{function}: MySQL connection",
            "fail",
            f"{where}: connected without TLS although tls.mode is {mode}",
            "enable TLS on the server (require_secure_transport) or fix tls.mode",
            function,
        )
    else:
        tls = f"TLS {used}" if used else "no TLS (tls.mode disabled)"
        connection = Check(f"{function}: MySQL connection", "pass", f"{where}, {tls}", by=function)
    if not tables:
        return [connection]
    return [connection, *_grant_checks(conn, pipeline, function)]


def _grant_checks(conn: pymysql.Connection, pipeline: PipelineConfig, function: str) -> list[Check]:
    unreadable: list[str] = []
    invisible: list[str] = []
    for table in pipeline.tables:
        try:
            quoted = quote_mysql_table(table.database, table.table)
            query_all(conn, f"SELECT 1 FROM {quoted} LIMIT 0")  # noqa: S608
        except (pymysql.MySQLError, MyshiftError) as exc:
            unreadable.append(f"{table.name} ({_first_line(exc)})")
            continue
        (count,) = query_all(
            conn,
            "SELECT COUNT(*) FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            (table.database, table.table),
        )[0]
        if not count:
            invisible.append(table.name)
    total = len(pipeline.tables)
    checks = []
    if unreadable or invisible:
        checks.append(
            Check(
                f"{function}: SELECT on the pipeline's tables",
                "fail",
                f"{total - len(unreadable) - len(invisible)}/{total} readable; "
                + "; ".join(
                    part
                    for part in (
                        f"cannot read {_named(unreadable)}" if unreadable else "",
                        f"no columns visible for {_named(invisible)}" if invisible else "",
                    )
                    if part
                ),
                f"GRANT SELECT ON <database>.* TO '{pipeline.source.user}'@'%'",
                function,
            )
        )
    else:
        checks.append(
            Check(
                f"{function}: SELECT on the pipeline's tables",
                "pass",
                f"{total}/{total} tables readable, columns visible",
                by=function,
            )
        )
    try:
        query_all(conn, "SELECT COUNT(*) FROM information_schema.innodb_trx")
    except (pymysql.MySQLError, MyshiftError) as exc:
        checks.append(
            Check(
                f"{function}: information_schema.innodb_trx readable",
                "warn",
                _first_line(exc),
                f"GRANT PROCESS ON *.* TO '{pipeline.source.user}'@'%' (without it the "
                "safety lag alone protects the bound from long open transactions)",
                function,
            )
        )
    else:
        checks.append(
            Check(
                f"{function}: information_schema.innodb_trx readable",
                "pass",
                "open transactions are seen when the bound is frozen",
                by=function,
            )
        )
    return checks


# --- the canary --------------------------------------------------------------------------


def write_canary(
    s3: S3Client, *, bucket: str, data_prefix: str, run_id: str, function: str
) -> tuple[Check, dict[str, Any] | None]:
    """The canary file and its manifest; the check and what the load needs of them."""
    prefix = doctor_prefix(data_prefix, run_id)
    file_key, manifest_key = f"{prefix}canary.parquet", f"{prefix}canary.manifest.json"
    columns, table = canary.canary_table()
    what = f"{function}: canary Parquet file written"
    try:
        size = write_table(s3, bucket=bucket, s3_key=file_key, columns=columns, table=table)
        load.put_manifest(s3, bucket, manifest_key, [{"s3_key": file_key, "bytes": size}])
    except MyshiftError as exc:
        return (
            Check(
                what,
                "fail",
                _first_line(exc),
                "give the function's role s3:PutObject on the data prefix",
                function,
            ),
            None,
        )
    detail = f"{len(columns) - 1} column types, {table.num_rows} rows, {size} bytes, SNAPPY"
    return Check(what, "pass", detail, by=function), {
        "manifest_url": f"s3://{bucket}/{manifest_key}",
        "rows": table.num_rows,
    }


def canary_statements(
    pipeline: PipelineConfig, manifest_url: str, copy_role_arn: str | None = None
) -> list[load.Statement]:
    """CREATE TEMP TABLE, COPY as the load does (as the role the load uses:
    `load.copy_role`, `copy_role_arn` the stack's), and the canonical text of every value
    (the statement named `read`)."""
    columns, _ = canary.canary_table()
    role = load.copy_role(pipeline.target, copy_role_arn)
    iam_role = sql_string(role) if role else load.DEFAULT_COPY_ROLE
    table = quote_redshift(CANARY_TABLE)
    fields = ", ".join(checksum.redshift_field(c) for c in columns[1:])
    key = quote_redshift(canary.KEY_COLUMN)
    return [
        load.Statement("create", f"CREATE TEMP TABLE {table} ({redshift_columns_ddl(columns)})"),
        load.Statement(
            "copy",
            f"COPY {table} FROM {sql_string(manifest_url)} IAM_ROLE {iam_role} "
            "FORMAT AS PARQUET MANIFEST",
        ),
        load.Statement("read", f"SELECT {key}, {fields} FROM {table} ORDER BY {key}"),  # noqa: S608
    ]


def canary_checks(records: list[list[Any]], *, function: str) -> list[Check]:
    """Compare every value read back with the file's value, exactly."""
    columns, table = canary.canary_table()
    what = f"{function}: canary COPY read back value by value"
    expected = table.to_pylist()
    if len(records) != len(expected):
        return [
            Check(
                what,
                "fail",
                f"{len(records)} rows read back, {len(expected)} written",
                "report this: COPY loaded a different number of rows than the file holds",
                function,
            )
        ]
    differing: list[str] = []
    for row, (written, read) in enumerate(zip(expected, records, strict=True), start=1):
        for col, value in zip(columns[1:], read[1:], strict=True):
            want = checksum.canonical_text(col, written[col.target_name])
            if str(value) != want:
                differing.append(
                    f"{col.target_name} ({col.column_type}) row {row}: "
                    f"{str(value)[:60]!r} != {want[:60]!r}"
                )
    if differing:
        return [
            Check(
                what,
                "fail",
                f"{len(differing)} values differ: {_named(differing)}",
                "do not sync tables with these column types until this is fixed; report it "
                "with the doctor's output",
                function,
            )
        ]
    cells = len(expected) * (len(columns) - 1)
    return [Check(what, "pass", f"{cells} values of {len(columns) - 1} types equal", by=function)]


def copy_failure(
    error: str, pipeline: PipelineConfig, *, function: str, copy_role_arn: str | None = None
) -> Check:
    """The canary COPY failed: the database's error and the likely remedy."""
    role = load.copy_role(pipeline.target, copy_role_arn) or "the default IAM role"
    return Check(
        f"{function}: canary COPY read back value by value",
        "fail",
        _first_line(error),
        f"let {role} read the bucket's data prefix and associate it with the "
        "workgroup/cluster; check the database user may create temporary tables",
        function,
    )


def privileges_sql(pipeline: PipelineConfig) -> str:
    """One query: the database user, and what it may do in the target schema and tables.

    Functions of the Redshift documentation: CURRENT_USER, HAS_DATABASE_PRIVILEGE,
    HAS_SCHEMA_PRIVILEGE, HAS_TABLE_PRIVILEGE (r_HAS_*_PRIVILEGE.html); catalogs
    PG_NAMESPACE and PG_TABLES. Arguments are columns, never constants, so that a
    schema or table that does not exist yields no row instead of an error.
    """
    schema = sql_string(pipeline.target.schema_name)
    names = sorted(
        {t.table.lower() for t in pipeline.tables}
        | {load.ledger_name(t.table.lower()) for t in pipeline.tables}
    )
    listed = ", ".join(sql_string(n) for n in names)
    flag = "CAST(NULL AS BOOLEAN)"
    # Names are quoted literals (sql_string).
    return (
        "SELECT CAST('database' AS VARCHAR), CAST(current_user AS VARCHAR), "  # noqa: S608
        f"HAS_DATABASE_PRIVILEGE(current_database(), 'CREATE'), {flag}, {flag}, {flag}, "
        "CAST(NULL AS VARCHAR) "
        "UNION ALL "
        "SELECT 'schema', CAST(nspname AS VARCHAR), HAS_SCHEMA_PRIVILEGE(nspname, 'CREATE'), "
        f"HAS_SCHEMA_PRIVILEGE(nspname, 'USAGE'), {flag}, {flag}, NULL "
        f"FROM pg_namespace WHERE nspname = {schema} "
        "UNION ALL "
        "SELECT 'table', CAST(tablename AS VARCHAR), tableowner = current_user, "
        f"{_may('INSERT')}, {_may('DELETE')}, {_may('SELECT')}, CAST(tableowner AS VARCHAR) "
        f"FROM pg_tables WHERE schemaname = {schema} AND tablename IN ({listed})"
    )


def _may(privilege: str) -> str:
    # Without USAGE on the schema, HAS_TABLE_PRIVILEGE itself fails: ask only with it.
    table = "quote_ident(schemaname) || '.' || quote_ident(tablename)"
    return (
        "CASE WHEN HAS_SCHEMA_PRIVILEGE(schemaname, 'USAGE') "
        f"THEN HAS_TABLE_PRIVILEGE({table}, '{privilege}') ELSE FALSE END"
    )


def _true(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "t", "1")


def privilege_checks(
    records: list[list[Any]], pipeline: PipelineConfig, *, function: str
) -> list[Check]:
    """Whether the database user can do what the load does, from `privileges_sql` rows."""
    schema = pipeline.target.schema_name
    user = next((str(r[1]) for r in records if r[0] == "database"), "?")
    may_create_schema = any(_true(r[2]) for r in records if r[0] == "database")
    schema_rows = [r for r in records if r[0] == "schema"]
    checks: list[Check] = []
    grant_db = (
        f'GRANT CREATE ON DATABASE "{pipeline.target.database}" TO "{user}" '
        "(docs: warehouse permissions)"
    )
    if not schema_rows:
        checks.append(
            Check(
                f"{function}: may create schema {schema}",
                "pass" if may_create_schema else "fail",
                f"database user {user}; the schema does not exist yet"
                + ("" if may_create_schema else " and the user may not create it"),
                "" if may_create_schema else grant_db,
                function,
            )
        )
    else:
        create, usage = _true(schema_rows[0][2]), _true(schema_rows[0][3])
        ok = create and usage
        checks.append(
            Check(
                f"{function}: CREATE and USAGE on schema {schema}",
                "pass" if ok else "fail",
                f"database user {user}: CREATE {'yes' if create else 'no'}, "
                f"USAGE {'yes' if usage else 'no'}",
                "" if ok else f'GRANT CREATE, USAGE ON SCHEMA "{schema}" TO "{user}"',
                function,
            )
        )
    lacking = []
    for row in (r for r in records if r[0] == "table"):
        missing = [
            what
            for what, granted in (
                ("owner (ALTER)", row[2]),
                ("INSERT", row[3]),
                ("DELETE", row[4]),
                ("SELECT", row[5]),
            )
            if not _true(granted)
        ]
        if missing:
            lacking.append(f"{row[1]} (owner {row[6]}; lacks {', '.join(missing)})")
    tables = [r for r in records if r[0] == "table"]
    checks.append(
        Check(
            f"{function}: owns and writes the existing target tables",
            "fail" if lacking else "pass",
            _named(lacking) if lacking else f"{len(tables)} existing tables and ledgers",
            f'ALTER TABLE ... OWNER TO "{user}" for each (schema evolution alters them)'
            if lacking
            else "",
            function,
        )
    )
    return checks


def failure_check(function: str, error: dict[str, Any]) -> Check:
    """A function that could not run its checks at all (a Catch in the workflow)."""
    cause = str(error.get("Cause") or "")
    try:
        parsed = json.loads(cause)
        cause = str(parsed.get("errorMessage") or cause) if isinstance(parsed, dict) else cause
    except ValueError:
        pass
    return Check(
        f"{function}: function ran its checks",
        "fail",
        f"{error.get('Error', 'Error')}: {_first_line(cause) if cause else 'no cause'}",
        "the state machine could not run the function: check its role may invoke it, "
        "and the function's logs",
        function,
    )


def report(pipeline: str, run_id: str, results: Sequence[Any]) -> dict[str, Any]:
    """Every row of every branch, in order, with the count of failures."""
    rows: list[dict[str, Any]] = []

    def collect(value: Any) -> None:
        if isinstance(value, list):
            for item in value:
                collect(item)
        elif isinstance(value, dict):
            failed = value.get("failed")
            if isinstance(failed, dict):
                rows.append(failure_check(str(failed.get("function")), failed).as_dict())
            rows.extend(dict(row) for row in value.get("checks") or [])
            for name, nested in value.items():
                if name not in ("checks", "failed"):
                    collect(nested)

    collect(list(results))
    return {
        "pipeline": pipeline,
        "run_id": run_id,
        "checks": rows,
        "failed": sum(1 for r in rows if r["status"] == "fail"),
        "warnings": sum(1 for r in rows if r["status"] == "warn"),
    }


# --- what each function checks (the handlers call these) ------------------------------


@dataclass(frozen=True)
class Context:
    """What a function's checks reach: its clients, the pipeline, where probes go."""

    connect: Callable[[], pymysql.Connection]
    state_table: StateTable
    s3: S3Client
    pipeline: PipelineConfig
    bucket: str
    data_prefix: str
    run_id: str
    now_epoch: int

    def probe_state_table(self, function: str) -> Check:
        return probe_state_table(
            self.state_table, function=function, run_id=self.run_id, now_epoch=self.now_epoch
        )

    def probe_bucket(self, function: str) -> Check:
        key = f"{doctor_prefix(self.data_prefix, self.run_id)}{function.lower()}.probe"
        return probe_bucket_write(self.s3, bucket=self.bucket, key=key, function=function)


def plan_checks(context: Context) -> dict[str, Any]:
    """The Plan function: the source's grants from its network, its AWS calls."""
    checks = (
        *source_checks(context.connect, context.pipeline, function="Plan"),
        context.probe_state_table("Plan"),
        context.probe_bucket("Plan"),
    )
    return {"checks": [c.as_dict() for c in checks]}


def extract_checks(context: Context) -> dict[str, Any]:
    """The Extract function: MySQL from its network, the canary file, its AWS calls."""
    written, canary_file = write_canary(
        context.s3,
        bucket=context.bucket,
        data_prefix=context.data_prefix,
        run_id=context.run_id,
        function="Extract",
    )
    checks = (
        *source_checks(context.connect, context.pipeline, function="Extract", tables=False),
        context.probe_state_table("Extract"),
        written,
    )
    return {"checks": [c.as_dict() for c in checks], "canary": canary_file}


def submit_warehouse_checks(
    redshift_data: RedshiftDataClient,
    state_table: StateTable,
    s3: S3Client,
    *,
    pipeline: PipelineConfig,
    canary_file: dict[str, Any] | None,
    bucket: str,
    data_prefix: str,
    run_id: str,
    poll_seconds: int,
    now_epoch: int,
    copy_role_arn: str | None = None,
) -> dict[str, Any]:
    """The Load function: its AWS calls; submits the canary COPY and the privileges
    query (followed by the workflow, as a load is: only this role may describe them)."""
    from myshift.steps import submitted

    function = "Load"
    checks = [
        probe_state_table(state_table, function=function, run_id=run_id, now_epoch=now_epoch),
        probe_bucket_write(
            s3,
            bucket=bucket,
            key=f"{doctor_prefix(data_prefix, run_id)}load.probe",
            function=function,
        ),
    ]
    target = pipeline.target
    try:
        privileges = load.submit_single(
            redshift_data, target, privileges_sql(pipeline), f"myshift-doctor-privileges-{run_id}"
        )
        copy, names = None, None
        if canary_file is not None:
            statements = canary_statements(
                pipeline, str(canary_file["manifest_url"]), copy_role_arn
            )
            names = [s.name for s in statements]
            copy = load.submit(
                redshift_data,
                target,
                [s.sql for s in statements],
                f"myshift-doctor-canary-{run_id}",
            )
    except MyshiftError as exc:
        checks.append(
            Check(
                f"{function}: Redshift Data API",
                "fail",
                _first_line(exc),
                "give the Load role redshift-data:ExecuteStatement/BatchExecuteStatement and "
                "redshift-serverless:GetCredentials (or redshift:GetClusterCredentials, or "
                "secretsmanager:GetSecretValue on the Redshift secret); check the workgroup, "
                "cluster and database names",
                function,
            )
        )
        return {"checks": [c.as_dict() for c in checks], "privileges": None, "canary": None}
    return {
        "checks": [c.as_dict() for c in checks],
        "privileges": submitted(privileges, poll_seconds=poll_seconds).dump(),
        "canary": (
            None if copy is None else submitted(copy, poll_seconds=poll_seconds, names=names).dump()
        ),
    }


def warehouse_results(
    redshift_data: RedshiftDataClient,
    *,
    pipeline: PipelineConfig,
    statements: dict[str, Any],
    copy_role_arn: str | None = None,
) -> dict[str, Any]:
    """Read the finished statements' results and turn them into rows."""
    function = "Load"
    checks: list[Check] = []
    privileges = statements.get("privileges")
    if privileges is not None:
        description = load.describe(redshift_data, privileges["statement_id"])
        if description.get("Status") == "FINISHED":
            records = load.statement_rows(redshift_data, privileges["statement_id"])
            checks += privilege_checks(records, pipeline, function=function)
        else:
            checks.append(
                Check(
                    f"{function}: database privileges readable",
                    "fail",
                    _first_line(str(load.failure_of(description))),
                    "check the database user exists (see the warehouse permissions)",
                    function,
                )
            )
    copy = statements.get("canary")
    if copy is not None:
        description = load.describe(redshift_data, copy["statement_id"])
        if description.get("Status") == "FINISHED":
            read = load.sub_statement_id(copy["statement_id"], copy["names"], "read")
            records = load.statement_rows(redshift_data, read)
            checks += canary_checks(records, function=function)
        else:
            checks.append(
                copy_failure(
                    str(load.failure_of(description)),
                    pipeline,
                    function=function,
                    copy_role_arn=copy_role_arn,
                )
            )
    return {"checks": [c.as_dict() for c in checks]}


def state_checks(state_table: StateTable, *, run_id: str, now_epoch: int) -> dict[str, Any]:
    """The State function: its AWS calls."""
    check = probe_state_table(state_table, function="State", run_id=run_id, now_epoch=now_epoch)
    return {"checks": [check.as_dict()]}
