"""The PostgreSQL-backed Redshift Data API stand-in, driven through boto3 and moto's server.

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth). Uses its own database,
`myshift_standin_test_<pid>`, created and dropped here, and runs as the database user of
a Secrets Manager secret (`standin_tester_<pid>`), a role dropped at the end.
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import boto3
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError
from moto.server import ThreadedMotoServer
from myshift.local.redshift_moto import installed
from myshift.local.redshift_standin import (
    RedshiftDataStandIn,
    SqlTranslationError,
    translate_sql,
)
from psycopg import sql as pgsql

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
TEST_DB = f"myshift_standin_test_{os.getpid()}"
TEST_DSN = f"postgresql://postgres@127.0.0.1:5432/{TEST_DB}"
BUCKET = "standin-test"
ROLE = "arn:aws:iam::123456789012:role/redshift-copy"
# The database user: the secret's (SecretArn is set by the `secret` fixture).
DB_USER = f"standin_tester_{os.getpid()}"
TARGET = {"WorkgroupName": "local", "Database": "dev"}
TERMINAL = {"FINISHED", "FAILED", "ABORTED"}


# --- fixtures -----------------------------------------------------------------------------


def _drop_database() -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(
            pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(TEST_DB))
        )
        # Roles are cluster-wide: the stand-in created this one on first use.
        conn.execute(pgsql.SQL("DROP ROLE IF EXISTS {}").format(pgsql.Identifier(DB_USER)))


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """A moto server on a free port, with fake credentials in the environment."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        _, port = server.get_host_and_port()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.stop()


@pytest.fixture(scope="module")
def s3(endpoint: str) -> Any:
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture(scope="module")
def standin(endpoint: str) -> Iterator[RedshiftDataStandIn]:
    _drop_database()
    instance = RedshiftDataStandIn(
        TEST_DSN, lambda: boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    )
    try:
        with installed(instance):
            yield instance
    finally:
        instance.shutdown()
        _drop_database()


@pytest.fixture(scope="module")
def secret(endpoint: str) -> str:
    """The warehouse secret the Data API calls name (SecretArn): its user runs them."""
    client = boto3.client("secretsmanager", endpoint_url=endpoint, region_name="us-east-1")
    arn = str(
        client.create_secret(
            Name="standin-warehouse",
            SecretString=json.dumps({"username": DB_USER, "password": "do-not-echo"}),
        )["ARN"]
    )
    TARGET["SecretArn"] = arn
    return arn


@pytest.fixture(scope="module")
def rsd(endpoint: str, standin: RedshiftDataStandIn, secret: str) -> Any:
    return boto3.client("redshift-data", endpoint_url=endpoint, region_name="us-east-1")


@pytest.fixture(scope="module")
def rsd_unchecked(endpoint: str, standin: RedshiftDataStandIn, secret: str) -> Any:
    """A client that skips boto3's own parameter checks, so the server's are exercised."""
    return boto3.client(
        "redshift-data",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(parameter_validation=False),
    )


# --- helpers ------------------------------------------------------------------------------


def wait(rsd: Any, statement_id: str, timeout: float = 20.0) -> dict[str, Any]:
    """Poll describe_statement until the statement is terminal."""
    deadline = time.monotonic() + timeout
    while True:
        described = rsd.describe_statement(Id=statement_id)
        if described["Status"] in TERMINAL:
            return described
        assert time.monotonic() < deadline, f"statement still {described['Status']}"
        time.sleep(0.02)


def run(rsd: Any, *sqls: str) -> dict[str, Any]:
    """One statement (execute) or several (one batch); the final description."""
    if len(sqls) == 1:
        submitted = rsd.execute_statement(Sql=sqls[0], **TARGET)
    else:
        submitted = rsd.batch_execute_statement(Sqls=list(sqls), **TARGET)
    return wait(rsd, submitted["Id"])


def ok(rsd: Any, *sqls: str) -> dict[str, Any]:
    described = run(rsd, *sqls)
    assert described["Status"] == "FINISHED", described.get("Error")
    return described


def failed(rsd: Any, *sqls: str) -> str:
    described = run(rsd, *sqls)
    assert described["Status"] == "FAILED"
    return str(described["Error"])


def rows(rsd: Any, sql: str) -> list[list[Any]]:
    """A query's rows as plain Python values."""
    result = rsd.get_statement_result(Id=ok(rsd, sql)["Id"])
    return [
        [None if f.get("isNull") else next(iter(f.values())) for f in r] for r in result["Records"]
    ]


def put_parquet(s3: Any, key: str, table: pa.Table, **options: Any) -> int:
    sink = io.BytesIO()
    pq.write_table(table, sink, **options)
    body = sink.getvalue()
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return len(body)


def copy(table: str, key: str, extra: str = "") -> str:
    return f"COPY {table} FROM 's3://{BUCKET}/{key}' IAM_ROLE '{ROLE}' FORMAT AS PARQUET {extra}"


# --- translate_sql ------------------------------------------------------------------------


def test_translate_strips_layout_clauses_outside_literals() -> None:
    out = translate_sql(
        'CREATE TABLE t (id BIGINT ENCODE az64 DISTKEY, "sortkey" VARCHAR(10) ENCODE zstd, '
        "note VARCHAR(20) DEFAULT 'DISTKEY(x) SUPER') BACKUP NO DISTSTYLE KEY "
        'COMPOUND SORTKEY(id, "sortkey") ENCODE AUTO'
    )
    upper = out.upper()
    for gone in ("ENCODE", "DISTSTYLE", "BACKUP", "COMPOUND"):
        assert gone not in upper
    assert "'DISTKEY(x) SUPER'" in out  # literal untouched
    assert '"sortkey" VARCHAR(10)' in out  # quoted identifier untouched
    assert "SORTKEY(" not in out and "DISTKEY," not in out


def test_translate_types() -> None:
    out = translate_sql(
        "CREATE TABLE t (id INT IDENTITY(0,1), b VARBYTE(100), c varbyte, j SUPER, n VARCHAR(MAX))"
    )
    assert "GENERATED BY DEFAULT AS IDENTITY (START WITH 0 INCREMENT BY 1 MINVALUE 0)" in out
    assert "b BYTEA" in out and "c BYTEA" in out and "j JSONB" in out
    assert "n VARCHAR(65535)" in out
    assert "encode(x, 'hex')" in translate_sql("SELECT encode(x, 'hex')")  # the function stays


def test_translate_refuses_what_redshift_refuses() -> None:
    with pytest.raises(SqlTranslationError, match="precision 39 must be between 1 and 38"):
        translate_sql("CREATE TABLE t (a DECIMAL(39, 0))")
    with pytest.raises(SqlTranslationError, match="cannot exceed 65535"):
        translate_sql("CREATE TABLE t (a VARCHAR(65536))")
    assert translate_sql("CREATE TABLE t (a NUMERIC(38,10))").endswith("NUMERIC(38,10))")


def test_translate_binds_parameters_as_literals() -> None:
    out = translate_sql(
        "SELECT a::text FROM t WHERE a = :a AND b = ':a'", [{"name": "a", "value": "it's"}]
    )
    assert out == "SELECT a::text FROM t WHERE a = 'it''s' AND b = ':a'"


def test_alter_distkey_is_a_checked_no_op(rsd: Any) -> None:
    ok(rsd, "CREATE TABLE alter_me (id INT) DISTSTYLE KEY DISTKEY(id)")
    ok(rsd, "ALTER TABLE alter_me ALTER DISTKEY id")
    assert 'relation "nope" does not exist' in failed(rsd, "ALTER TABLE nope ALTER SORTKEY (id)")


# --- Data API behaviour -------------------------------------------------------------------


def test_typed_result_values(rsd: Any) -> None:
    ok(
        rsd,
        "CREATE TABLE typed (i INT, b BIGINT, f DOUBLE PRECISION, r REAL, t BOOLEAN, "
        "d DECIMAL(20,2), dt DATE, ts TIMESTAMP, v VARCHAR(10), x VARBYTE(8), n INT, "
        "j SUPER)",
    )
    ok(
        rsd,
        "INSERT INTO typed VALUES (1, 9007199254740993, 1.5, 0.25, TRUE, 12.30, '2024-02-29', "
        "'2024-02-29 13:14:15.123456', 'héllo', '\\x0102', NULL, '{\"a\": 1}')",
    )
    described = ok(rsd, "SELECT * FROM typed")
    assert described["HasResultSet"] is True and described["ResultRows"] == 1
    assert isinstance(described["CreatedAt"], dt.datetime)
    assert isinstance(described["Duration"], int) and described["Duration"] >= 0
    result = rsd.get_statement_result(Id=described["Id"])
    assert result["TotalNumRows"] == 1 and "NextToken" not in result
    assert result["Records"] == [
        [
            {"longValue": 1},
            {"longValue": 9007199254740993},
            {"doubleValue": 1.5},
            {"doubleValue": 0.25},
            {"booleanValue": True},
            {"stringValue": "12.30"},
            {"stringValue": "2024-02-29"},
            {"stringValue": "2024-02-29 13:14:15.123456"},
            {"stringValue": "héllo"},
            {"blobValue": b"\x01\x02"},
            {"isNull": True},
            {"stringValue": '{"a":1}'},
        ]
    ]
    types = [c["typeName"] for c in result["ColumnMetadata"]]
    assert types == [
        "int4", "int8", "float8", "float4", "bool", "numeric",
        "date", "timestamp", "varchar", "varbyte", "int4", "super",
    ]  # fmt: skip
    assert [c["name"] for c in result["ColumnMetadata"]][:2] == ["i", "b"]


def test_statuses_and_sub_statement_ids(rsd: Any) -> None:
    submitted = rsd.batch_execute_statement(
        Sqls=[
            "CREATE TABLE subs (a INT)",
            "INSERT INTO subs VALUES (1), (2), (3)",
            "SELECT a FROM subs ORDER BY a",
        ],
        StatementName="subs-test",
        **TARGET,
    )
    assert "SecretArn" not in submitted  # never echoed
    first = rsd.describe_statement(Id=submitted["Id"])["Status"]
    assert first in {"SUBMITTED", "PICKED", "STARTED", "FINISHED"}
    described = wait(rsd, submitted["Id"])
    assert described["Status"] == "FINISHED" and "SecretArn" not in described
    subs = described["SubStatements"]
    assert [s["Id"] for s in subs] == [f"{submitted['Id']}:{n}" for n in (1, 2, 3)]
    assert [s["Status"] for s in subs] == ["FINISHED"] * 3
    assert [s["ResultRows"] for s in subs] == [-1, 3, 3]
    assert [s["HasResultSet"] for s in subs] == [False, False, True]
    assert subs[1]["QueryString"] == "INSERT INTO subs VALUES (1), (2), (3)"

    second = rsd.describe_statement(Id=f"{submitted['Id']}:2")
    assert second["Id"] == f"{submitted['Id']}:2" and second["ResultRows"] == 3
    result = rsd.get_statement_result(Id=f"{submitted['Id']}:3")
    assert [r[0]["longValue"] for r in result["Records"]] == [1, 2, 3]

    listed = rsd.list_statements(StatementName="subs-test")["Statements"]
    assert [s["Id"] for s in listed] == [submitted["Id"]] and listed[0]["IsBatchStatement"]

    with pytest.raises(ClientError) as parent:
        rsd.get_statement_result(Id=submitted["Id"])
    assert parent.value.response["Error"]["Code"] == "ValidationException"
    assert "batch" in parent.value.response["Error"]["Message"]
    for unknown in ("00000000-0000-0000-0000-000000000000", f"{submitted['Id']}:4"):
        with pytest.raises(rsd.exceptions.ResourceNotFoundException):
            rsd.describe_statement(Id=unknown)


def test_result_of_statement_without_result_set_is_refused(rsd: Any) -> None:
    described = ok(rsd, "CREATE TABLE no_result (a INT)")
    with pytest.raises(rsd.exceptions.ValidationException, match="does not have result"):
        rsd.get_statement_result(Id=described["Id"])


def test_failed_statement_carries_database_error(rsd: Any) -> None:
    described = run(rsd, "SELECT * FROM missing_table")
    assert described["Status"] == "FAILED"
    assert described["Error"] == 'ERROR: relation "missing_table" does not exist'


def test_batch_is_one_transaction(rsd: Any) -> None:
    ok(rsd, "CREATE TABLE atomic (a INT)")
    described = run(
        rsd,
        "INSERT INTO atomic VALUES (1)",
        "INSERT INTO atomic VALUES (2)",
        "INSERT INTO atomic VALUES ('not a number')",
        "INSERT INTO atomic VALUES (4)",
    )
    assert described["Status"] == "FAILED"
    assert "invalid input syntax for type integer" in described["Error"]
    statuses = [s["Status"] for s in described["SubStatements"]]
    assert statuses == ["FINISHED", "FINISHED", "FAILED", "ABORTED"]
    assert "invalid input syntax" in described["SubStatements"][2]["Error"]
    assert rows(rsd, "SELECT count(*) FROM atomic") == [[0]]  # the 1st insert rolled back


def test_temp_table_does_not_outlive_its_call(rsd: Any) -> None:
    described = ok(rsd, "CREATE TEMP TABLE scratch (a INT)", "INSERT INTO scratch VALUES (1)")
    assert described["SubStatements"][1]["ResultRows"] == 1
    assert 'relation "scratch" does not exist' in failed(rsd, "SELECT * FROM scratch")


def test_limits_on_statement_count_and_size(rsd: Any, rsd_unchecked: Any) -> None:
    with pytest.raises(ClientError) as too_many:
        rsd.batch_execute_statement(Sqls=["SELECT 1"] * 41, **TARGET)
    assert too_many.value.response["Error"]["Code"] == "ValidationException"
    assert "less than or equal to 40" in too_many.value.response["Error"]["Message"]
    with pytest.raises(ParamValidationError):  # boto3 itself refuses an empty list
        rsd.batch_execute_statement(Sqls=[], **TARGET)
    with pytest.raises(ClientError, match="greater than or equal to 1"):
        rsd_unchecked.batch_execute_statement(Sqls=[], **TARGET)
    assert ok(rsd, *["SELECT 1"] * 40)["Status"] == "FINISHED"

    big = "SELECT '" + "x" * (100 * 1024) + "'"
    with pytest.raises(rsd.exceptions.ValidationException, match="larger than 100kB"):
        rsd.execute_statement(Sql=big, **TARGET)
    half = "SELECT '" + "x" * (51 * 1024) + "'"
    with pytest.raises(rsd.exceptions.ValidationException, match="larger than 100kB"):
        rsd.batch_execute_statement(Sqls=[half, half], **TARGET)


def test_parameters_are_bound(rsd: Any) -> None:
    submitted = rsd.execute_statement(
        Sql="SELECT :name || '!' AS greeting, :n::int + 1 AS next",
        Parameters=[{"name": "name", "value": "O'Brien"}, {"name": "n", "value": "41"}],
        **TARGET,
    )
    assert wait(rsd, submitted["Id"])["Status"] == "FINISHED"
    record = rsd.get_statement_result(Id=submitted["Id"])["Records"][0]
    assert record == [{"stringValue": "O'Brien!"}, {"longValue": 42}]


def test_cancel_a_running_statement(rsd: Any) -> None:
    submitted = rsd.execute_statement(Sql="SELECT pg_sleep(30)", **TARGET)
    deadline = time.monotonic() + 10
    while rsd.describe_statement(Id=submitted["Id"])["Status"] != "STARTED":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert rsd.cancel_statement(Id=submitted["Id"])["Status"] is True
    assert wait(rsd, submitted["Id"])["Status"] == "ABORTED"
    with pytest.raises(rsd.exceptions.ValidationException, match="already in ABORTED"):
        rsd.cancel_statement(Id=submitted["Id"])


# --- COPY ... FORMAT AS PARQUET -----------------------------------------------------------


def test_copy_loads_every_supported_type(rsd: Any, s3: Any) -> None:
    ok(
        rsd,
        "CREATE TABLE all_types (s SMALLINT, i INTEGER, b BIGINT, u DECIMAL(20,0), "
        "d DECIMAL(12,3), r REAL, f DOUBLE PRECISION, t BOOLEAN, day DATE, ts TIMESTAMP, "
        "tz TIMESTAMPTZ, v VARCHAR(8), x VARBYTE(16))",
    )
    table = pa.table(
        {
            "s": pa.array([1, None], pa.int16()),
            "i": pa.array([2, None], pa.int16()),  # int16 widens into INTEGER
            "b": pa.array([3, None], pa.int32()),  # int32 widens into BIGINT
            "u": pa.array([decimal.Decimal(18446744073709551615), None], pa.decimal128(20, 0)),
            "d": pa.array([decimal.Decimal("-1.250"), None], pa.decimal128(12, 3)),
            "r": pa.array([0.5, None], pa.float32()),
            "f": pa.array([2.25, None], pa.float64()),
            "t": pa.array([True, None]),
            "day": pa.array([dt.date(2024, 2, 29), None], pa.date32()),
            # A legacy TIMESTAMP_MICROS column (a UTC-adjusted one: test_copy_timestamps).
            "ts": pa.array(
                [dt.datetime(2024, 1, 2, 3, 4, 5, 678901), None], pa.timestamp("us", "UTC")
            ),
            "tz": pa.array([dt.datetime(2024, 1, 2, 3, 4, 5), None], pa.timestamp("ms", "UTC")),
            "v": pa.array(['a"b,c\n', ""], pa.string()),  # CSV-hostile text and ''
            "x": pa.array([b"\x00\xff", None], pa.binary()),
        }
    )
    put_parquet(s3, "types/part-0.parquet", table)
    described = ok(rsd, copy("all_types", "types/"))
    assert described["ResultRows"] == 2 and described["HasResultSet"] is False
    got = rows(rsd, "SELECT * FROM all_types ORDER BY s NULLS LAST")
    assert got[0] == [
        1, 2, 3, "18446744073709551615", "-1.250", 0.5, 2.25, True, "2024-02-29",
        "2024-01-02 03:04:05.678901", "2024-01-02 03:04:05+00", 'a"b,c\n', b"\x00\xff",
    ]  # fmt: skip
    assert got[1] == [None] * 11 + ["", None]  # NULL stays NULL, '' stays ''


def test_copy_into_temp_stage_inside_a_batch(rsd: Any, s3: Any) -> None:
    """The loader's pattern: stage in a TEMP table, COPY, merge, all in one transaction."""
    size = 200_000
    table = pa.table(
        {
            "id": pa.array(range(size), pa.int64()),
            "name": pa.array([f"name-{n}" for n in range(size)], pa.string()),
            "amount": pa.array(
                [decimal.Decimal(n) / 100 for n in range(size)], pa.decimal128(12, 2)
            ),
        }
    )
    put_parquet(s3, "bulk/chunk-1.parquet", table.slice(0, size // 2))
    put_parquet(s3, "bulk/chunk-2.parquet", table.slice(size // 2))
    ok(rsd, "CREATE TABLE bulk (id BIGINT, name VARCHAR(20), amount DECIMAL(12,2))")
    started = time.monotonic()
    described = ok(
        rsd,
        "CREATE TEMP TABLE stage (LIKE bulk)",
        copy("stage", "bulk/chunk-"),
        "INSERT INTO bulk SELECT * FROM stage",
        "SELECT count(*) FROM stage",
    )
    elapsed = time.monotonic() - started
    assert described["SubStatements"][1]["ResultRows"] == size
    assert described["SubStatements"][2]["ResultRows"] == size
    counted = rsd.get_statement_result(Id=described["SubStatements"][3]["Id"])
    assert counted["Records"] == [[{"longValue": size}]]
    assert elapsed < 20, f"COPY of {size} rows took {elapsed:.1f}s"  # a sanity bound only


def test_copy_prefix_semantics(rsd: Any, s3: Any) -> None:
    ok(rsd, "CREATE TABLE prefixed (a BIGINT)")
    for name in ("chunk-1", "chunk-10", "other-1"):
        put_parquet(s3, f"prefix/{name}.parquet", pa.table({"a": pa.array([1], pa.int64())}))
    # 'chunk-1' is a key PREFIX: it matches chunk-1 and chunk-10, not other-1.
    assert ok(rsd, copy("prefixed", "prefix/chunk-1"))["ResultRows"] == 2
    error = failed(rsd, copy("prefixed", "prefix/chunk-2"))
    assert "The specified S3 prefix 'prefix/chunk-2' does not exist" in error


def _load_error(rsd: Any, s3: Any, ddl: str, table: pa.Table, name: str, **options: Any) -> str:
    ok(rsd, ddl)
    put_parquet(s3, f"reject/{name}.parquet", table, **options)
    return failed(rsd, copy(name, f"reject/{name}.parquet"))


def test_copy_rejects_column_count_mismatch(rsd: Any, s3: Any) -> None:
    table = pa.table({"a": pa.array([1], pa.int32())})
    error = _load_error(rsd, s3, "CREATE TABLE r_count (a INT, b INT)", table, "r_count")
    assert "Unmatched number of columns between table and file" in error
    assert "Table columns: 2, Data columns: 1" in error


def test_copy_rejects_int64_into_integer(rsd: Any, s3: Any) -> None:
    table = pa.table({"a": pa.array([1], pa.int64())})
    error = _load_error(rsd, s3, "CREATE TABLE r_int64 (a INTEGER)", table, "r_int64")
    assert "incompatible Parquet schema for column 'a'" in error
    assert "Column type: INTEGER, Parquet schema: optional int64 a" in error


def test_copy_rejects_int32_into_smallint(rsd: Any, s3: Any) -> None:
    table = pa.table({"a": pa.array([1], pa.int32())})
    error = _load_error(rsd, s3, "CREATE TABLE r_int32 (a SMALLINT)", table, "r_int32")
    assert "incompatible Parquet schema for column 'a'. Column type: SMALLINT" in error


@pytest.mark.parametrize("ddl_type", ["DECIMAL(20,3)", "DECIMAL(19,2)"])
def test_copy_rejects_other_decimal_precision_or_scale(rsd: Any, s3: Any, ddl_type: str) -> None:
    name = "r_dec_" + ddl_type.split("(")[1].replace(",", "_").rstrip(")")
    table = pa.table({"a": pa.array([decimal.Decimal("1.25")], pa.decimal128(20, 2))})
    error = _load_error(rsd, s3, f"CREATE TABLE {name} (a {ddl_type})", table, name)
    assert "incompatible Parquet schema for column 'a'" in error
    assert f"Column type: NUMERIC{ddl_type[7:]}" in error and "DECIMAL(20,2)" in error


def test_copy_rejects_nanosecond_timestamps(rsd: Any, s3: Any) -> None:
    table = pa.table({"ts": pa.array([dt.datetime(2024, 1, 1)], pa.timestamp("ns"))})
    error = _load_error(rsd, s3, "CREATE TABLE r_ns (ts TIMESTAMP)", table, "r_ns")
    assert "incompatible Parquet schema for column 'ts'" in error
    assert "TIMESTAMP(NANOS,false)" in error


def test_copy_rejects_string_into_boolean(rsd: Any, s3: Any) -> None:
    table = pa.table({"flag": pa.array(["true"], pa.string())})
    error = _load_error(rsd, s3, "CREATE TABLE r_bool (flag BOOLEAN)", table, "r_bool")
    assert "incompatible Parquet schema for column 'flag'. Column type: BOOLEAN" in error


def test_copy_rejects_int_into_varchar(rsd: Any, s3: Any) -> None:
    table = pa.table({"v": pa.array([12], pa.int32())})
    error = _load_error(rsd, s3, "CREATE TABLE r_varchar (v VARCHAR(10))", table, "r_varchar")
    assert "incompatible Parquet schema for column 'v'. Column type: VARCHAR(10)" in error


def test_copy_counts_varchar_length_in_bytes(rsd: Any, s3: Any) -> None:
    ok(rsd, "CREATE TABLE r_bytes (v VARCHAR(5))")
    put_parquet(s3, "bytes/fits.parquet", pa.table({"v": ["abcde", "éé"]}))  # 5 and 4 bytes
    assert ok(rsd, copy("r_bytes", "bytes/fits.parquet"))["ResultRows"] == 2
    put_parquet(s3, "bytes/too-long.parquet", pa.table({"v": ["ok", "é" * 3]}))  # 6 bytes
    error = failed(rsd, copy("r_bytes", "bytes/too-long.parquet"))
    assert "Load into table 'r_bytes' failed" in error
    assert "String length exceeds DDL length" in error and "colname: v" in error
    assert "line_number: 2" in error
    assert rows(rsd, "SELECT count(*) FROM r_bytes") == [[2]]  # nothing of the failed COPY


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("MAXERROR 10", "MAXERROR argument is not supported for PARQUET based COPY"),
        ("REGION 'us-east-1'", "REGION argument is not supported for PARQUET based COPY"),
        ("ACCEPTANYDATE", "ACCEPTANYDATE argument is not supported for PARQUET based COPY"),
    ],
)
def test_copy_refuses_options_parquet_does_not_support(
    rsd: Any, s3: Any, option: str, expected: str
) -> None:
    ok(rsd, "CREATE TABLE IF NOT EXISTS r_options (a BIGINT)")
    put_parquet(s3, "options/a.parquet", pa.table({"a": pa.array([1], pa.int64())}))
    assert expected in failed(rsd, copy("r_options", "options/a.parquet", option))


def test_copy_manifest_needs_content_length(rsd: Any, s3: Any) -> None:
    ok(rsd, "CREATE TABLE r_manifest (a BIGINT)")
    size = put_parquet(s3, "manifest/a.parquet", pa.table({"a": pa.array([7], pa.int64())}))
    url = f"s3://{BUCKET}/manifest/a.parquet"

    def manifest(key: str, entries: list[dict[str, Any]]) -> str:
        s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({"entries": entries}).encode())
        return copy("r_manifest", key, "MANIFEST")

    error = failed(rsd, manifest("manifest/no-length.json", [{"url": url, "mandatory": True}]))
    assert "content_length" in error and url in error

    missing = f"s3://{BUCKET}/manifest/missing.parquet"
    entries = [
        {"url": url, "mandatory": True, "meta": {"content_length": size}},
        {"url": missing, "mandatory": True, "meta": {"content_length": 1}},
    ]
    error = failed(rsd, manifest("manifest/missing.json", entries))
    assert "mandatory" in error and missing in error

    entries[1]["mandatory"] = False  # an optional missing file is skipped
    assert ok(rsd, manifest("manifest/good.json", entries))["ResultRows"] == 1


def test_copy_credentials_are_not_echoed(rsd: Any, s3: Any) -> None:
    ok(rsd, "CREATE TABLE r_creds (a BIGINT)")
    put_parquet(s3, "creds/a.parquet", pa.table({"a": pa.array([1], pa.int64())}))
    sql = (
        f"COPY r_creds FROM 's3://{BUCKET}/creds/a.parquet' "
        "CREDENTIALS 'aws_access_key_id=AKIAEXAMPLE;aws_secret_access_key=TOPSECRET' "
        "FORMAT AS PARQUET"
    )
    described = ok(rsd, sql)
    assert "TOPSECRET" not in json.dumps(described, default=str)
    assert "CREDENTIALS '***'" in described["QueryString"]


def test_copy_without_authorization_fails(rsd: Any, s3: Any) -> None:
    ok(rsd, "CREATE TABLE r_noauth (a BIGINT)")
    put_parquet(s3, "noauth/a.parquet", pa.table({"a": pa.array([1], pa.int64())}))
    error = failed(rsd, f"COPY r_noauth FROM 's3://{BUCKET}/noauth/a.parquet' FORMAT AS PARQUET")
    assert "Invalid credentials" in error


def test_copy_column_list_and_identity_columns(rsd: Any, s3: Any) -> None:
    ok(
        rsd,
        "CREATE TABLE r_identity (id BIGINT IDENTITY(1,1), a BIGINT, note VARCHAR(10), "
        "loaded_at TIMESTAMP DEFAULT GETDATE())",
    )
    put_parquet(s3, "identity/a.parquet", pa.table({"a": pa.array([5], pa.int64()), "n": ["x"]}))
    # Without a column list the IDENTITY column is generated, not read from the file;
    # defaulted columns still count, so two file columns do not fit four-minus-one.
    error = failed(rsd, copy("r_identity", "identity/a.parquet"))
    assert "Table columns: 3, Data columns: 2" in error
    assert ok(rsd, copy("r_identity (a, note)", "identity/a.parquet"))["ResultRows"] == 1
    got = rows(rsd, "SELECT id, a, note, loaded_at IS NOT NULL FROM r_identity")
    assert got == [[1, 5, "x", True]]


def test_auto_commit_batch_keeps_earlier_statements(rsd: Any) -> None:
    ok(rsd, "CREATE TABLE auto_commit (a INT)")
    submitted = rsd.batch_execute_statement(
        Sqls=["INSERT INTO auto_commit VALUES (1)", "INSERT INTO auto_commit VALUES ('x')"],
        ExecutionMode="AUTO_COMMIT",
        **TARGET,
    )
    assert wait(rsd, submitted["Id"])["Status"] == "FAILED"
    assert rows(rsd, "SELECT count(*) FROM auto_commit") == [[1]]


def test_failure_at_commit_fails_the_batch(rsd: Any) -> None:
    """An error raised by COMMIT itself still fails the statement.

    (Only a way to provoke a COMMIT-time error: a deferred foreign key added in
    PostgreSQL itself, behind the stand-in, which keeps declared keys as metadata only,
    as Redshift does. A serialization failure at COMMIT is the other way, see
    test_redshift_standin_rules.)
    """
    ok(rsd, "CREATE TABLE parent_rows (id INT PRIMARY KEY)", "CREATE TABLE child_rows (pid INT)")
    with psycopg.connect(TEST_DSN, autocommit=True) as conn:
        conn.execute("ALTER TABLE parent_rows ADD UNIQUE (id)")
        conn.execute(
            "ALTER TABLE child_rows ADD FOREIGN KEY (pid) REFERENCES parent_rows (id) "
            "DEFERRABLE INITIALLY DEFERRED"
        )
    described = run(rsd, "INSERT INTO child_rows VALUES (1)", "SELECT 1")
    assert described["Status"] == "FAILED"
    assert "violates foreign key constraint" in described["Error"]


# --- the database user ----------------------------------------------------------------------


def test_statements_run_as_the_secrets_user(rsd: Any) -> None:
    assert rows(rsd, "SELECT current_user, session_user") == [[DB_USER, DB_USER]]
    assert "permission denied to set session authorization" in failed(
        rsd, "RESET SESSION AUTHORIZATION"
    )


def test_copy_inserts_as_the_database_user(rsd: Any, s3: Any, standin: RedshiftDataStandIn) -> None:
    """A table the user does not own takes its COPY only with the INSERT privilege."""
    standin.run_as_admin("CREATE TABLE r_granted (a BIGINT)")
    put_parquet(s3, "granted/a.parquet", pa.table({"a": pa.array([1, 2], pa.int64())}))
    error = failed(rsd, copy("r_granted", "granted/a.parquet"))
    assert error == "ERROR: permission denied for relation r_granted"
    standin.run_as_admin(f"GRANT INSERT ON r_granted TO {DB_USER}")
    assert ok(rsd, copy("r_granted", "granted/a.parquet"))["ResultRows"] == 2
    assert "permission denied for relation r_granted" in failed(
        rsd, "SELECT count(*) FROM r_granted"
    )  # INSERT only, as granted


# --- Parquet that COPY reads ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "accepted"),
    [("none", True), ("snappy", True), ("gzip", True), ("zstd", False), ("lz4", False)],
)
def test_copy_accepts_only_the_codecs_redshift_tools_write(
    rsd: Any, s3: Any, codec: str, accepted: bool
) -> None:
    name = f"r_codec_{codec}"
    ok(rsd, f"CREATE TABLE {name} (a BIGINT, v VARCHAR(8))")
    table = pa.table({"a": pa.array([1], pa.int64()), "v": ["x"]})
    put_parquet(s3, f"codec/{codec}.parquet", table, compression=codec)
    if accepted:
        assert ok(rsd, copy(name, f"codec/{codec}.parquet"))["ResultRows"] == 1
        return
    error = failed(rsd, copy(name, f"codec/{codec}.parquet"))
    assert f"column 'a' is compressed with {codec.upper()}" in error
    assert (
        "only accepts the codecs Redshift's own tools write (UNCOMPRESSED, SNAPPY, GZIP)" in error
    )
    assert "`myshift doctor` checks it in your account" in error


def test_copy_timestamps(rsd: Any, s3: Any) -> None:
    """INT96, or INT64 with the legacy converted type; a logical type alone is refused."""
    ok(rsd, "CREATE TABLE r_ts (ts TIMESTAMP)")
    moment = dt.datetime(2024, 2, 29, 23, 59, 58, 123456)
    naive = pa.table({"ts": pa.array([moment], pa.timestamp("us"))})
    put_parquet(s3, "ts/logical.parquet", naive)
    error = failed(rsd, copy("r_ts", "ts/logical.parquet"))
    assert "column 'ts' is a timestamp with only the logical type" in error
    assert "TIMESTAMP(MICROS,false)" in error and "TIMESTAMP_MICROS/TIMESTAMP_MILLIS" in error
    put_parquet(s3, "ts/int96.parquet", naive, use_deprecated_int96_timestamps=True)
    assert ok(rsd, copy("r_ts", "ts/int96.parquet"))["ResultRows"] == 1
    utc = pa.table({"ts": pa.array([moment], pa.timestamp("us", "UTC"))})
    put_parquet(s3, "ts/micros.parquet", utc)
    assert ok(rsd, copy("r_ts", "ts/micros.parquet"))["ResultRows"] == 1
    assert rows(rsd, "SELECT ts::text FROM r_ts") == [[str(moment)]] * 2
