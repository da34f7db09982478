"""Hostile and malformed input: execution input, pipeline files, CLI flags, source metadata.

Each case gets a clear, one-line error and leaves DynamoDB (scanned before and after),
S3 (listed before and after) and the warehouse (row counts of every table) unchanged.
A failed run may record itself (its RUN# item and the failed status on the watermark);
nothing that decides what is synced (keys, counts, files, schemas) changes. Hostile
source *column* names sync, under sanitized target names; hostile *table* names are
refused by the pipeline file's validation.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from boto3.dynamodb.conditions import Key
from click.testing import CliRunner
from myshift import state
from myshift.cli.main import cli
from myshift.identifiers import quote_mysql, quote_mysql_table, quote_redshift
from myshift.local import sample
from myshift.local.engine import LocalEngine
from myshift.schema import truncate_utf8
from myshift.settings import map_results_prefix

from tests.conftest import MYSQL
from tests.e2e.conftest import (
    DATABASE,
    compare_table,
    isolated_warehouse,
    local_cli_env,
    pipeline_yaml,
    with_outcomes,
)
from tests.support.mariadb import connect as mysql_conn
from tests.support.mariadb import execute_alone

PIPELINE = "e2e_hostile"
AUTH = "e2e_hostile_auth"  # a pipeline whose source login is wrong (rewritten per case)
BAD = "e2e_hostile_bad"  # the pipeline file each YAML case writes
SCHEMA = "hostile_dw"
# Source tables (and the login) carry the process id: test sessions run side by side.
SUFFIX = os.getpid()
ORDERS = f"{DATABASE}.hostile_orders_{SUFFIX}"
COLS = f"{DATABASE}.hostile_cols_{SUFFIX}"
PCT = f"{DATABASE}.hostile_pct_{SUFFIX}"
KEYS = f"{DATABASE}.hostile_keys_{SUFFIX}"
COLLIDE = f"{DATABASE}.hostile_collide_{SUFFIX}"
VANISH = f"{DATABASE}.hostile_vanish_{SUFFIX}"
EMPTY = f"{DATABASE}.hostile_empty_{SUFFIX}"
NOKEY = f"{DATABASE}.hostile_nokey_{SUFFIX}"
ALL_TABLES = [ORDERS, COLS, PCT, KEYS, COLLIDE, VANISH, EMPTY, NOKEY]
USER = f"hostile_pw_user_{SUFFIX}"
RIGHT_PASSWORD = "Right-Pw-8841"
WRONG_PASSWORD = "Wr0ng-Pw-5512-hostile"
STAMP = dt.datetime(2025, 8, 2, 12, 0, 0, 123456)


def name_of(qualified: str) -> str:
    return qualified.split(".")[1]


# --- hostile source tables ----------------------------------------------------------------

# Column name -> (type, target name it must get).
HOSTILE_COLUMNS: dict[str, tuple[str, str]] = {
    "back`tick": ("VARCHAR(60)", "back_tick"),
    'double"quote': ("VARCHAR(60)", "double_quote"),
    "single'quote": ("VARCHAR(60)", "single_quote"),
    "semi;colon": ("INT", "semi_colon"),
    "with space": ("VARCHAR(60)", "with_space"),
    "주문_금액": ("DECIMAL(12,2)", "_____"),
    '"; DROP TABLE x; --': ("VARCHAR(100)", "___drop_table_x____"),
    "Mixed-Case": ("INT", "mixed_case"),
    "190_time": ("INT", "col_190_time"),
    "xmin": ("INT", "col_xmin"),
    "select": ("VARCHAR(10)", "select"),
    "new\nline": ("VARCHAR(60)", "new_line"),
    "back\\slash": ("VARCHAR(60)", "back_slash"),
    "tab\tname": ("TEXT", "tab_name"),
    # 63 characters: the PostgreSQL stand-in cuts identifiers at 63 bytes (Redshift: 127).
    "가" * 63: ("VARCHAR(20)", "_" * 63),
    "big text": ("MEDIUMTEXT", "big_text"),
}
HOSTILE_VALUES: list[str | None] = [
    '"; DROP TABLE x; --',
    "\\N",
    "NULL",
    "",
    None,
    "a,b,c",
    'quote"inside',
    "it's",
    "new\nline",
    "cr\r\nlf",
    "\x1f unit separator",
    "\ttab",
    "back\\slash",
    "주문 ☕",
    "😀 emoji",
    "%s %d %% {0}",
    "x" * 10,
    "é" * 10,
]
BIG_VALUES: list[str | None] = ["a" * 100_000, "😀" * 20_000, "", None, "short"]


def create_hostile_columns_table() -> int:
    database, name = COLS.split(".")
    columns = ", ".join(f"{quote_mysql(c)} {t} NULL" for c, (t, _) in HOSTILE_COLUMNS.items())
    conn = mysql_conn()
    rows = 0
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {quote_mysql_table(database, name)}")
            cursor.execute(
                f"CREATE TABLE {quote_mysql_table(database, name)} (id BIGINT NOT NULL PRIMARY "
                f"KEY, updated_at DATETIME(6) NOT NULL, {columns}, KEY k (updated_at, id)) "
                "DEFAULT CHARSET=utf8mb4"
            )
            names = ["id", "updated_at", *HOSTILE_COLUMNS]
            placeholders = ", ".join(["%s"] * len(names))
            sql = (
                f"INSERT INTO {quote_mysql_table(database, name)} "
                f"({', '.join(quote_mysql(n) for n in names)}) VALUES ({placeholders})"
            )
            for i in range(40):
                values: list[Any] = [i + 1, STAMP + dt.timedelta(seconds=i // 3)]
                for j, (_column, (kind, _)) in enumerate(HOSTILE_COLUMNS.items()):
                    text = HOSTILE_VALUES[(i + j) % len(HOSTILE_VALUES)]
                    if kind == "INT":
                        values.append(None if text is None else (i * 37 + j) - 500)
                    elif kind.startswith("DECIMAL"):
                        values.append(None if text is None else decimal.Decimal(i * 1000 + j) / 7)
                    elif kind == "MEDIUMTEXT":
                        values.append(BIG_VALUES[i % len(BIG_VALUES)])
                    elif kind == "VARCHAR(10)":
                        values.append(None if text is None else text[:10])
                    else:
                        values.append(text)
                cursor.execute(sql, values)
                rows += 1
    finally:
        conn.close()
    return rows


HOSTILE_KEYS = [
    "'",
    '"',
    "`",
    "\\",
    "%",
    "%s",
    "; DROP TABLE x; --",
    " leading space",
    "trailing space ",
    "주문",
    "😀",
    "a,b",
    "line\nbreak",
    "tab\there",
    "NULL",
    "\\N",
    "",
    "\x1f",
    "0",
    "00",
    "zzz",
    *[f"k{i:03d}" for i in range(30)],
]


def create_tables() -> None:
    conn = mysql_conn()
    sample.seed(conn, DATABASE, name_of(ORDERS), 300)
    sample.seed(conn, DATABASE, name_of(VANISH), 120)
    sample.create_table(conn, DATABASE, name_of(EMPTY))
    conn.close()
    create_hostile_columns_table()
    pct = quote_mysql_table(*PCT.split("."))
    keys = quote_mysql_table(*KEYS.split("."))
    collide = quote_mysql_table(*COLLIDE.split("."))
    nokey = quote_mysql_table(*NOKEY.split("."))
    execute_alone(
        f"DROP TABLE IF EXISTS {pct}",
        f"CREATE TABLE {pct} (id BIGINT NOT NULL PRIMARY KEY, updated_at DATETIME(6) NOT NULL, "
        "`percent%s` INT NULL, `pct% d` VARCHAR(10) NULL, KEY k (updated_at, id))",
        f"INSERT INTO {pct} VALUES (1, '2025-08-02 00:00:00', 1, '%s'), "
        "(2, '2025-08-02 00:00:01', 2, '%d'), (3, '2025-08-02 00:00:01', NULL, NULL)",
        f"DROP TABLE IF EXISTS {keys}",
        f"CREATE TABLE {keys} (id VARCHAR(64) NOT NULL PRIMARY KEY, updated_at DATETIME(6) "
        "NOT NULL, note VARCHAR(64) NULL, KEY k (updated_at, id)) DEFAULT CHARSET=utf8mb4",
        f"DROP TABLE IF EXISTS {collide}",
        f"CREATE TABLE {collide} (id BIGINT NOT NULL PRIMARY KEY, updated_at DATETIME(6) NOT "
        "NULL, `a b` INT, `a-b` INT, KEY k (updated_at, id))",
        f"INSERT INTO {collide} VALUES (1, '2025-08-02 00:00:00', 1, 2)",
        f"DROP TABLE IF EXISTS {nokey}",
        f"CREATE TABLE {nokey} (id BIGINT NOT NULL, updated_at DATETIME(6) NOT NULL)",
        f"INSERT INTO {nokey} VALUES (1, '2025-08-02 00:00:00'), (1, '2025-08-02 00:00:00')",
    )
    conn = mysql_conn()
    with conn.cursor() as cursor:
        # Every key ties on the cursor: chunk boundaries fall between hostile strings.
        cursor.executemany(
            f"INSERT INTO {keys} VALUES (%s, '2025-08-02 00:00:00', %s)",
            [(k, f"note of {k!r}"[:64]) for k in HOSTILE_KEYS],
        )
    conn.close()


# --- snapshots: what must not change -------------------------------------------------------

WATERMARK_DATA = (
    "last_key",
    "last_mysql_data_timestamp",
    "last_mysql_extraction_time",
    "mysql_rows_extracted",
    "redshift_rows_loaded",
    "last_redshift_load_time",
    "redshift_from_timestamp",
    "last_run_id",
    "backup_strategy",
)


# Every partition this module's pipelines can write to.
OWN_PARTITIONS = [
    *[state.partition_key(PIPELINE, t) for t in ALL_TABLES],
    state.partition_key(AUTH, ORDERS),
    state.partition_key(BAD, ORDERS),
]
_CLIENTS: dict[tuple[int, str], Any] = {}


def client(engine: LocalEngine, service: str) -> Any:
    """One boto3 client per service (creating one costs more than most calls here)."""
    key = (id(engine), service)
    if key not in _CLIENTS:
        _CLIENTS[key] = engine.client_table() if service == "table" else engine.client(service)
    return _CLIENTS[key]


def dynamodb_items(engine: LocalEngine) -> list[dict]:
    """This module's items (queried by partition; a whole-table scan is slow in a session
    that already holds thousands of items)."""
    table = client(engine, "table")
    items: list[dict] = []
    for pk in OWN_PARTITIONS:
        kwargs: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq(pk)}
        while True:
            page = table.query(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return items


def item_count(engine: LocalEngine) -> int:
    """Items in the whole state table: an item written or deleted anywhere shows here."""
    description = client(engine, "dynamodb").describe_table(TableName=engine.state_table)
    return int(description["Table"]["ItemCount"])


def state_view(engine: LocalEngine, strict: bool) -> dict[tuple[str, str], str]:
    """DynamoDB as a comparable map. Not strict: a failed run's own record (RUN# items and
    the status fields of the watermark) is left out; everything else is compared."""
    view: dict[tuple[str, str], str] = {}
    if strict:
        view[("*", "item count")] = str(item_count(engine))
    for item in dynamodb_items(engine):
        key = (str(item["pk"]), str(item["sk"]))
        if not strict:
            if key[1].startswith(state.RUN_PREFIX):
                continue
            if key[1] == state.WATERMARK:
                data = {k: item.get(k, state.WATERMARK_DEFAULTS[k]) for k in WATERMARK_DATA}
                if all(data[k] == state.WATERMARK_DEFAULTS[k] for k in WATERMARK_DATA):
                    continue  # a failed first run's watermark holds nothing but a status
                item = data
        view[key] = json.dumps(item, sort_keys=True, default=str)
    return view


def s3_view(engine: LocalEngine) -> dict[str, str]:
    s3 = client(engine, "s3")
    objects: dict[str, str] = {}
    bookkeeping = f"{map_results_prefix('data')}/"  # every run's Map Run manifests
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=engine.bucket):
        objects.update(
            {
                o["Key"]: o["ETag"]
                for o in page.get("Contents", [])
                if not o["Key"].startswith(bookkeeping)
            }
        )
    return objects


def warehouse_view(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as pg:
        tables = pg.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE "
            "table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'"
        ).fetchall()
        return {
            f"{s}.{t}": int(
                pg.execute(
                    f"SELECT COUNT(*) FROM {quote_redshift(s)}.{quote_redshift(t)}"
                ).fetchone()[0]
            )
            for s, t in tables
        }


def execution_count(engine: LocalEngine) -> int:
    assert engine.resources is not None
    pages = client(engine, "stepfunctions").get_paginator("list_executions")
    return sum(
        len(page["executions"])
        for page in pages.paginate(stateMachineArn=engine.resources.state_machine_arn)
    )


class Snapshot:
    def __init__(self, engine: LocalEngine, dsn: str, strict: bool) -> None:
        self.strict = strict
        self.state = state_view(engine, strict)
        self.s3 = s3_view(engine)
        self.warehouse = warehouse_view(dsn)

    def assert_unchanged(self, engine: LocalEngine, dsn: str) -> None:
        after = Snapshot(engine, dsn, self.strict)
        if _BASELINE["snapshot"] is self:  # the next case starts from what this one left
            _BASELINE.update(snapshot=after, valid=True)
        assert after.state == self.state, "DynamoDB changed"
        assert after.s3 == self.s3, "S3 changed"
        assert after.warehouse == self.warehouse, "the warehouse changed"


# Cases that must change nothing leave the next case the same state: one snapshot per
# case (after it) serves as the next case's "before". Valid only if the previous test
# checked it; any other test in between invalidates it.
_BASELINE: dict[str, Any] = {"snapshot": None, "valid": False}


@pytest.fixture(autouse=True)
def _baseline_guard() -> None:
    if not _BASELINE["valid"]:
        _BASELINE["snapshot"] = None
    _BASELINE["valid"] = False


def baseline(engine: LocalEngine, dsn: str) -> Snapshot:
    """The strict snapshot before this case (taken now, or left by the previous case)."""
    if _BASELINE["snapshot"] is None:
        _BASELINE["snapshot"] = Snapshot(engine, dsn, strict=True)
    return _BASELINE["snapshot"]


# --- fixtures -------------------------------------------------------------------------------


def write_pipeline(
    directory: Path, name: str, tables: list[str], source: dict | None = None
) -> None:
    text = pipeline_yaml(name, tables, schema=SCHEMA, chunk_rows=7)
    if source is not None:
        lines = [f"  {k}: {v}" for k, v in source.items()]
        start = text.index("source:\n") + len("source:\n")
        end = text.index("target:")
        text = text[:start] + "\n".join(lines) + "\n" + text[end:]
    (directory / f"{name}.yml").write_text(text)


@pytest.fixture(scope="module")
def warehouse(engine: LocalEngine) -> Iterator[str]:
    with isolated_warehouse(engine, "myshift_warehouse_hostile") as dsn:
        yield dsn


@pytest.fixture(scope="module")
def hostile(engine: LocalEngine, warehouse: str, pipelines_dir: Path) -> Iterator[Path]:
    """The tables, a login for the password cases, and a first successful run."""
    create_tables()
    for host in ("%", "localhost", "127.0.0.1"):
        execute_alone(
            f"DROP USER IF EXISTS '{USER}'@'{host}'",
            f"CREATE USER '{USER}'@'{host}' IDENTIFIED BY '{RIGHT_PASSWORD}'",
            f"GRANT SELECT ON `{DATABASE}`.* TO '{USER}'@'{host}'",
        )
    table = engine.client_table()
    for item in dynamodb_items(engine):
        if item["pk"].startswith(f"{PIPELINE}"):
            table.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
    write_pipeline(pipelines_dir, PIPELINE, ALL_TABLES)
    first = execute(engine, {"pipeline": PIPELINE, "tables": [ORDERS, VANISH]})
    assert first["status"] == "SUCCEEDED", first.get("cause")
    yield pipelines_dir
    for name in (AUTH, BAD):
        (pipelines_dir / f"{name}.yml").unlink(missing_ok=True)
    for host in ("%", "localhost", "127.0.0.1"):
        execute_alone(f"DROP USER IF EXISTS '{USER}'@'{host}'")
    execute_alone(*[f"DROP TABLE IF EXISTS {quote_mysql_table(*t.split('.'))}" for t in ALL_TABLES])


def execute(engine: LocalEngine, execution_input: Any, name: str | None = None) -> dict:
    """Start an execution and wait for its end (polling briefly: most fail at once)."""
    assert engine.resources is not None
    sfn = client(engine, "stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=engine.resources.state_machine_arn,
        name=name or f"hostile-{time.time_ns()}",
        input=json.dumps(execution_input),
    )["executionArn"]
    deadline = time.monotonic() + 300
    while (description := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return with_outcomes(engine, description)


def failure(description: dict) -> tuple[str, str]:
    """(error type, message) of a failed execution; the message is one line."""
    assert description["status"] == "FAILED", description.get("output")
    cause = json.loads(description["cause"])
    message = cause["errorMessage"]
    assert "\n" not in message, message
    return description["error"], message


# --- 1. execution input ---------------------------------------------------------------------

P = PIPELINE
EXECUTION_INPUTS: list[tuple[str, Any, str, str]] = [
    ("a list", [], "InputError", "must be a JSON object"),
    ("a string", "sync everything", "InputError", "must be a JSON object"),
    ("a number", 42, "InputError", "must be a JSON object"),
    ("empty object", {}, "InputError", "pipeline"),
    ("unknown field", {"pipeline": P, "drop": True}, "InputError", "drop"),
    ("limit 0", {"pipeline": P, "limit": 0}, "InputError", "limit"),
    ("limit negative", {"pipeline": P, "limit": -1}, "InputError", "limit"),
    ("limit as string", {"pipeline": P, "limit": "100"}, "InputError", "limit"),
    ("limit float", {"pipeline": P, "limit": 1.5}, "InputError", "limit"),
    ("limit bool", {"pipeline": P, "limit": True}, "InputError", "limit"),
    ("limit huge", {"pipeline": P, "limit": 10**12}, "InputError", "limit"),
    ("max_chunks 0", {"pipeline": P, "max_chunks": 0}, "InputError", "max_chunks"),
    ("max_chunks negative", {"pipeline": P, "max_chunks": -5}, "InputError", "max_chunks"),
    ("max_chunks huge", {"pipeline": P, "max_chunks": 10**9}, "InputError", "max_chunks"),
    ("mode unknown", {"pipeline": P, "mode": "delete_everything"}, "InputError", "mode"),
    (
        "both flags",
        {"pipeline": P, "backup_only": True, "redshift_only": True},
        "InputError",
        "exclude each other",
    ),
    (
        "flag contradicts mode",
        {"pipeline": P, "mode": "redshift_only", "backup_only": True},
        "InputError",
        "contradicts",
    ),
    ("tables not a list", {"pipeline": P, "tables": ORDERS}, "InputError", "tables"),
    ("tables with null", {"pipeline": P, "tables": [None]}, "InputError", "tables"),
    ("table unknown", {"pipeline": P, "tables": ["x.y"]}, "ConfigError", "has no table 'x.y'"),
    (
        "table injection",
        {"pipeline": P, "tables": [f"{DATABASE}.`; DROP TABLE x; --"]},
        "ConfigError",
        "has no table",
    ),
    ("table twice", {"pipeline": P, "tables": [ORDERS, ORDERS]}, "InputError", "listed twice"),
    ("table upper case", {"pipeline": P, "tables": [ORDERS.upper()]}, "ConfigError", "has no"),
    ("pipeline unknown", {"pipeline": "nope"}, "ConfigError", "unknown pipeline 'nope'"),
    ("pipeline path", {"pipeline": "../../etc/passwd"}, "ConfigError", "unknown pipeline"),
    ("pipeline empty", {"pipeline": ""}, "InputError", "pipeline"),
    ("pipeline huge", {"pipeline": "p" * 10_000}, "InputError", "pipeline"),
    ("pipeline a number", {"pipeline": 7}, "InputError", "pipeline"),
    ("pipeline NUL", {"pipeline": P + "\x00"}, "ConfigError", "unknown pipeline"),
    (
        "5000 tables",
        {"pipeline": P, "tables": [f"{DATABASE}.t{i}" for i in range(5000)]},
        "ConfigError",
        "has no table",
    ),
]


@pytest.mark.parametrize(
    ("execution_input", "error", "needle"),
    [pytest.param(i, e, n, id=c) for c, i, e, n in EXECUTION_INPUTS],
)
def test_bad_execution_input_fails_at_once_and_changes_nothing(
    engine: LocalEngine,
    warehouse: str,
    hostile: Path,
    execution_input: Any,
    error: str,
    needle: str,
) -> None:
    before = baseline(engine, warehouse)
    description = execute(engine, execution_input)
    got_error, message = failure(description)
    assert (got_error, needle in message) == (error, True), message
    assert len(message) < 2_000
    before.assert_unchanged(engine, warehouse)


def test_execution_name_that_is_no_run_id_fails_and_changes_nothing(
    engine: LocalEngine, warehouse: str, hostile: Path
) -> None:
    before = Snapshot(engine, warehouse, strict=True)
    description = execute(engine, {"pipeline": P, "tables": [ORDERS]}, name="hostile.run.1")
    error, message = failure(description)
    assert error == "InputError" and "execution name 'hostile.run.1'" in message
    before.assert_unchanged(engine, warehouse)


# --- 2. pipeline files ------------------------------------------------------------------------


def base_pipeline() -> dict:
    return {
        "name": BAD,
        "source": {
            "host": MYSQL["host"],
            "port": MYSQL["port"],
            "user": MYSQL["user"],
            "password_env": "MYSQL_PASSWORD",
        },
        "target": {"database": "dev", "schema": SCHEMA, "workgroup": "local"},
        "chunk_rows": 100,
        "safety_lag_seconds": 0,
        "tables": [{"name": ORDERS, "cursor": "updated_at", "primary_key": ["id"]}],
    }


def edited(change: Callable[[dict], Any]) -> str:
    data = base_pipeline()
    change(data)
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def table_field(field: str, value: Any) -> Callable[[dict], Any]:
    return lambda d: d["tables"][0].__setitem__(field, value)


def top(field: str, value: Any) -> Callable[[dict], Any]:
    return lambda d: d.__setitem__(field, value)


def section(name: str, field: str, value: Any) -> Callable[[dict], Any]:
    return lambda d: d[name].__setitem__(field, value)


ALIAS_BOMB = (
    "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n"
        for p, c in zip("abcdef", "bcdefg", strict=True)
    )
    + "name: *g\n"
)
PIPELINE_FILES: list[tuple[str, str, str]] = [
    ("yaml syntax error", "name: [unclosed\n", "cannot read pipeline file"),
    ("a list", "- name: x\n- name: y\n", "must be a mapping"),
    ("empty file", "", "must be a mapping"),
    ("alias bomb", ALIAS_BOMB, "name"),
    ("name mismatch", edited(top("name", "e2e_other")), "must match the file name"),
    ("table backtick", edited(table_field("name", f"{DATABASE}.hostile`x")), "tables.0.name"),
    (
        "table injection",
        edited(table_field("name", f'{DATABASE}."; DROP TABLE x; --')),
        "tables.0.name",
    ),
    ("table space", edited(table_field("name", f"{DATABASE}.my table")), "tables.0.name"),
    ("table unicode", edited(table_field("name", f"{DATABASE}.주문")), "tables.0.name"),
    ("table quote", edited(table_field("name", f"{DATABASE}.o'rders")), "tables.0.name"),
    ("table semicolon", edited(table_field("name", f"{DATABASE}.a;b")), "tables.0.name"),
    ("table unqualified", edited(table_field("name", name_of(ORDERS))), "tables.0.name"),
    ("table three parts", edited(table_field("name", "a.b.c")), "tables.0.name"),
    ("table empty", edited(table_field("name", "")), "tables.0.name"),
    ("cursor injection", edited(table_field("cursor", "updated_at`; --")), "tables.0.cursor"),
    ("primary key empty", edited(table_field("primary_key", [])), "tables.0.primary_key"),
    (
        "primary key injection",
        edited(table_field("primary_key", ["id; DROP TABLE x"])),
        "tables.0.primary_key",
    ),
    ("chunk_rows 0", edited(top("chunk_rows", 0)), "chunk_rows"),
    ("chunk_rows negative", edited(top("chunk_rows", -5)), "chunk_rows"),
    ("chunk_rows huge", edited(top("chunk_rows", 10**12)), "chunk_rows"),
    ("chunk_rows text", edited(top("chunk_rows", "many")), "chunk_rows"),
    ("port 0", edited(section("source", "port", 0)), "source.port"),
    ("port 70000", edited(section("source", "port", 70_000)), "source.port"),
    ("unknown field", edited(section("source", "pasword", "x")), "source.pasword"),
    (
        "two password sources",
        edited(section("source", "secret_arn", "arn:aws:secretsmanager:x")),
        "password_env or secret_arn",
    ),
    (
        "no password source",
        edited(lambda d: d["source"].pop("password_env")),
        "password_env or secret_arn",
    ),
    (
        "schema injection",
        edited(section("target", "schema", 'dw"; DROP SCHEMA public; --')),
        "target.schema",
    ),
    (
        "two endpoints",
        edited(section("target", "cluster_identifier", "c1")),
        "workgroup",
    ),
    ("safety lag negative", edited(top("safety_lag_seconds", -1)), "safety_lag_seconds"),
    ("chunk concurrency 0", edited(top("max_concurrent_chunks", 0)), "max_concurrent_chunks"),
    ("chunk concurrency 41", edited(top("max_concurrent_chunks", 41)), "max_concurrent_chunks"),
    ("tables empty", edited(top("tables", [])), "tables"),
    ("tables twice", edited(lambda d: d["tables"].append(dict(d["tables"][0]))), "listed twice"),
    ("strategy unknown", edited(top("strategy", "yolo")), "strategy"),
]


@pytest.fixture()
def bad_file(hostile: Path) -> Iterator[Path]:
    path = hostile / f"{BAD}.yml"
    yield path
    path.unlink(missing_ok=True)


@pytest.mark.parametrize(
    ("text", "needle"), [pytest.param(t, n, id=c) for c, t, n in PIPELINE_FILES]
)
def test_bad_pipeline_file_fails_with_the_file_and_field_and_changes_nothing(
    engine: LocalEngine, warehouse: str, bad_file: Path, text: str, needle: str
) -> None:
    bad_file.write_text(text, encoding="utf-8")
    before = baseline(engine, warehouse)
    error, message = failure(execute(engine, {"pipeline": BAD}))
    assert error == "ConfigError", message
    assert f"{BAD}.yml" in message and needle in message, message
    before.assert_unchanged(engine, warehouse)


def test_pipeline_file_that_is_not_utf8_fails_with_a_config_error_naming_it(
    engine: LocalEngine, warehouse: str, bad_file: Path
) -> None:
    bad_file.write_bytes(edited(lambda d: None).encode() + "# café au lait\n".encode("latin-1"))
    before = Snapshot(engine, warehouse, strict=True)
    error, message = failure(execute(engine, {"pipeline": BAD}))
    assert error == "ConfigError" and f"{BAD}.yml" in message, (error, message)
    before.assert_unchanged(engine, warehouse)


def test_a_bad_pipeline_file_does_not_stop_the_other_pipelines(
    engine: LocalEngine, warehouse: str, bad_file: Path
) -> None:
    bad_file.write_text(edited(top("chunk_rows", 0)))
    description = execute(engine, {"pipeline": PIPELINE, "tables": [ORDERS]})
    assert description["status"] == "SUCCEEDED", description.get("cause")


def test_one_pipeline_in_two_files_is_refused(
    engine: LocalEngine, warehouse: str, bad_file: Path
) -> None:
    bad_file.write_text(edited(lambda d: None))
    twin = bad_file.with_suffix(".yaml")
    twin.write_text(edited(top("chunk_rows", 5)))
    try:
        before = Snapshot(engine, warehouse, strict=True)
        error, message = failure(execute(engine, {"pipeline": BAD}))
        assert error == "ConfigError" and BAD in message, message
        before.assert_unchanged(engine, warehouse)
    finally:
        twin.unlink(missing_ok=True)


# --- 3. CLI flags -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_env(
    engine: LocalEngine, hostile: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    return local_cli_env(engine, hostile, tmp_path_factory.mktemp("hostile-state"))


def watermark_set(timestamp: str) -> list[str]:
    return ["watermark", "set", "-p", P, "-t", ORDERS, "--timestamp", timestamp]


def sync_args(*extra: str) -> list[str]:
    return ["sync", "pipeline", "-p", P, "-t", ORDERS, *extra]


def clean_args(*extra: str) -> list[str]:
    return ["s3clean", "clean", "-p", P, "-t", ORDERS, *extra]


CLI_CASES: list[tuple[str, list[str], str]] = [
    ("limit huge", sync_args("--limit", "99999999999"), "limit"),
    ("limit zero", sync_args("--limit", "0"), "limit"),
    ("max-chunks negative", sync_args("--max-chunks", "-1"), "max_chunks"),
    ("limit exponent", sync_args("--limit", "1e3"), "not a valid integer"),
    ("table unicode", ["sync", "pipeline", "-p", P, "-t", f"{DATABASE}.주문"], "has no table"),
    ("pipeline path", ["sync", "pipeline", "-p", "../etc/passwd"], "unknown pipeline"),
    ("pipeline empty", ["sync", "pipeline", "-p", ""], "pipeline"),
    ("both modes", sync_args("--backup-only", "--redshift-only"), "exclude each other"),
    ("timestamp words", watermark_set("yesterday"), "is not 'YYYY-MM-DD"),
    ("timestamp Z", watermark_set("2025-08-09T20:00:01Z"), "time zone"),
    ("timestamp offset", watermark_set("2025-08-09 20:00:01-05:00"), "time zone"),
    ("timestamp +0900", watermark_set("2025-08-09T20:00:01.000+0900"), "time zone"),
    ("timestamp date+offset", watermark_set("2025-08-09+09:00"), "time zone"),
    ("timestamp UTC word", watermark_set("2025-08-09 20:00:01 UTC"), "timestamp"),
    ("timestamp empty", watermark_set(""), "timestamp"),
    ("timestamp month 13", watermark_set("2025-13-01"), "timestamp"),
    ("timestamp hour 24", watermark_set("2025-08-09 24:00:00"), "timestamp"),
    ("timestamp epoch", watermark_set("1754769601"), "timestamp"),
    ("timestamp zero date", watermark_set("0000-00-00 00:00:00"), "timestamp"),
    ("timestamp 7 digits", watermark_set("2025-08-09 20:00:01.1234567"), "timestamp"),
    ("timestamp injection", watermark_set("2025-08-09'; DROP TABLE x; --"), "timestamp"),
    ("timestamp no seconds", watermark_set("2025-08-09 20:00"), "timestamp"),
    (
        "get injection",
        ["watermark", "get", "-p", P, "-t", f"{ORDERS}'; --"],
        "has no table",
    ),
    ("clean negative age", clean_args("--older-than", "-1d"), "--older-than"),
    ("clean zero age", clean_args("--older-than", "0d"), "more than zero"),
    ("clean age words", clean_args("--older-than", "a week"), "--older-than"),
    ("clean age huge", clean_args("--older-than", "99999999d"), "100 years"),
    ("clean blank pattern", clean_args("--pattern", "   "), "--pattern"),
    ("clean-all no terminal", ["s3clean", "clean-all", "--older-than", "1d"], "--force"),
    ("runs show injection", ["runs", "show", "x; rm -rf /"], "execution name"),
]


@pytest.mark.parametrize(("args", "needle"), [pytest.param(a, n, id=c) for c, a, n in CLI_CASES])
def test_bad_cli_flags_fail_with_exit_2_and_change_nothing(
    engine: LocalEngine, warehouse: str, cli_env: dict[str, str], args: list[str], needle: str
) -> None:
    before = baseline(engine, warehouse)
    executions = execution_count(engine)
    result = CliRunner().invoke(cli, ["--local", *args], env=cli_env, catch_exceptions=False)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert needle in result.stderr, result.stderr
    if result.stderr.startswith("error: "):  # myshift's own errors: one line
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    before.assert_unchanged(engine, warehouse)
    assert execution_count(engine) == executions  # nothing was started


def test_cli_refuses_a_table_given_twice_before_starting_anything(
    engine: LocalEngine, warehouse: str, cli_env: dict[str, str]
) -> None:
    before = Snapshot(engine, warehouse, strict=True)
    executions = execution_count(engine)
    result = CliRunner().invoke(
        cli, ["--local", *sync_args("-t", ORDERS)], env=cli_env, catch_exceptions=False
    )
    assert (result.exit_code, execution_count(engine)) == (2, executions), result.stderr
    assert "listed twice" in result.stderr
    before.assert_unchanged(engine, warehouse)


# --- 4. source metadata and the source itself -----------------------------------------------


def sync(engine: LocalEngine, *tables: str, pipeline: str = PIPELINE) -> dict:
    return execute(engine, {"pipeline": pipeline, "tables": list(tables)})


def normalized(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return value.normalize()
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    return value


def test_hostile_column_names_sync_under_sanitized_names_with_every_value(
    engine: LocalEngine, warehouse: str, hostile: Path
) -> None:
    description = sync(engine, COLS)
    assert description["status"] == "SUCCEEDED", description.get("cause")
    stored = state.get_schema(engine.client_table(), PIPELINE, COLS)
    assert stored is not None
    expected_map = {"id": "id", "updated_at": "updated_at"}
    expected_map.update({c: target for c, (_, target) in HOSTILE_COLUMNS.items()})
    assert stored["name_map"] == expected_map
    with psycopg.connect(warehouse) as pg:
        columns = [
            r[0]
            for r in pg.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                "AND table_name = %s ORDER BY ordinal_position",
                (SCHEMA, name_of(COLS)),
            ).fetchall()
        ]
        assert columns == list(expected_map.values())
        names = ", ".join(quote_redshift(c) for c in columns)
        target = {
            r[0]: tuple(normalized(v) for v in r)
            for r in pg.execute(f"SELECT {names} FROM {SCHEMA}.{name_of(COLS)}").fetchall()
        }
    conn = mysql_conn()
    with conn.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(quote_mysql(c) for c in expected_map)} "
            f"FROM {quote_mysql_table(*COLS.split('.'))}"
        )
        source = {}
        for row in cursor.fetchall():
            values = list(row)
            big = list(expected_map).index("big text")
            if values[big] is not None:
                values[big] = truncate_utf8(values[big], 65535)  # cut and counted, by design
            source[row[0]] = tuple(normalized(v) for v in values)
    conn.close()
    assert set(target) == set(source)
    differing = [k for k in source if source[k] != target[k]]
    assert differing == [], differing[:5]
    # '' and NULL stay apart, and the two oversized values were counted, not silently cut.
    with psycopg.connect(warehouse) as pg:
        empties = pg.execute(
            f"SELECT COUNT(*) FILTER (WHERE with_space = ''), COUNT(*) FILTER (WHERE "
            f"with_space IS NULL) FROM {SCHEMA}.{name_of(COLS)}"
        ).fetchone()
    assert empties[0] > 0 and empties[1] > 0
    record = next(
        r
        for r in state.list_runs(engine.client_table(), PIPELINE, COLS)
        if r["run_id"] == description["name"]
    )
    assert record["conversion_report"]["values_truncated"] == {"big_text": 16}


def test_percent_signs_in_column_names_sync(
    engine: LocalEngine, warehouse: str, hostile: Path
) -> None:
    description = sync(engine, PCT)
    assert description["status"] == "SUCCEEDED", description.get("cause")
    result = compare_table(engine, warehouse, PIPELINE, PCT, SCHEMA)
    assert result.equal and result.target_rows == 3, result


def test_hostile_string_keys_tied_on_the_cursor_chunk_exactly(
    engine: LocalEngine, warehouse: str, hostile: Path
) -> None:
    description = sync(engine, KEYS)
    assert description["status"] == "SUCCEEDED", description.get("cause")
    output = description["output_json"]
    assert output["results"][0]["files_extracted"] == -(-len(HOSTILE_KEYS) // 7)
    comparison = compare_table(engine, warehouse, PIPELINE, KEYS, SCHEMA)
    assert comparison.equal and comparison.target_rows == len(HOSTILE_KEYS), comparison
    # A second run finds nothing new: the watermark sits on a hostile key exactly.
    again = sync(engine, KEYS)
    assert again["status"] == "SUCCEEDED", again.get("cause")
    assert again["output_json"]["results"][0]["rows_extracted"] == 0


def test_colliding_sanitized_column_names_fail_clearly_and_change_nothing(
    engine: LocalEngine, warehouse: str, hostile: Path
) -> None:
    before = Snapshot(engine, warehouse, strict=False)
    error, message = failure(sync(engine, COLLIDE))
    assert error == "RunFailedError"
    assert "'a b' and 'a-b' both map to Redshift column 'a_b'" in message, message
    before.assert_unchanged(engine, warehouse)


def test_table_without_a_key_fails_clearly_and_changes_nothing(
    engine: LocalEngine, warehouse: str, hostile: Path
) -> None:
    before = Snapshot(engine, warehouse, strict=False)
    _, message = failure(sync(engine, NOKEY))
    assert "SchemaError" in message and "no PRIMARY KEY" in message, message
    before.assert_unchanged(engine, warehouse)


def test_empty_table_syncs_nothing_and_changes_nothing(
    engine: LocalEngine, warehouse: str, hostile: Path
) -> None:
    before = Snapshot(engine, warehouse, strict=False)
    description = sync(engine, EMPTY)
    assert description["status"] == "SUCCEEDED", description.get("cause")
    assert description["output_json"]["results"][0]["rows_extracted"] == 0
    after = Snapshot(engine, warehouse, strict=False)
    assert after.s3 == before.s3 and after.warehouse == before.warehouse
    mark = state.get_watermark(engine.client_table(), PIPELINE, EMPTY)
    assert mark["last_key"] is None and mark["mysql_rows_extracted"] == 0


def write_auth_pipeline(directory: Path, **source: Any) -> None:
    values = {
        "host": MYSQL["host"],
        "port": MYSQL["port"],
        "user": USER,
        "password_env": "MYSHIFT_HOSTILE_PASSWORD",
        "connect_timeout_seconds": 3,
    }
    values.update(source)
    write_pipeline(directory, AUTH, [ORDERS], source=values)


def test_wrong_password_fails_with_one_line_naming_user_and_host_without_the_password(
    engine: LocalEngine, warehouse: str, hostile: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_auth_pipeline(hostile)
    monkeypatch.setenv("MYSHIFT_HOSTILE_PASSWORD", WRONG_PASSWORD)
    before = Snapshot(engine, warehouse, strict=False)
    description = sync(engine, ORDERS, pipeline=AUTH)
    _, message = failure(description)
    assert f"{USER}@{MYSQL['host']}:{MYSQL['port']}" in message, message
    assert "Access denied" in message and "SourceQueryError" in message, message
    assert WRONG_PASSWORD not in json.dumps(description, default=str)
    record = state.list_runs(engine.client_table(), AUTH, ORDERS)[0]
    assert record["status"] == "failed" and WRONG_PASSWORD not in json.dumps(record, default=str)
    before.assert_unchanged(engine, warehouse)


def test_missing_password_variable_fails_clearly(
    engine: LocalEngine, warehouse: str, hostile: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_auth_pipeline(hostile, password_env="MYSHIFT_HOSTILE_UNSET")
    monkeypatch.delenv("MYSHIFT_HOSTILE_UNSET", raising=False)
    before = Snapshot(engine, warehouse, strict=False)
    _, message = failure(sync(engine, ORDERS, pipeline=AUTH))
    assert "ConfigError" in message and "MYSHIFT_HOSTILE_UNSET" in message, message
    before.assert_unchanged(engine, warehouse)


@pytest.mark.slow
def test_unreachable_host_fails_clearly_after_the_retries(
    engine: LocalEngine, warehouse: str, hostile: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_auth_pipeline(hostile, port=1)
    monkeypatch.setenv("MYSHIFT_HOSTILE_PASSWORD", RIGHT_PASSWORD)
    before = Snapshot(engine, warehouse, strict=False)
    _, message = failure(sync(engine, ORDERS, pipeline=AUTH))
    assert "SourceUnavailableError" in message and f"{USER}@{MYSQL['host']}:1" in message
    before.assert_unchanged(engine, warehouse)


def test_table_dropped_after_a_successful_run_fails_and_changes_nothing(
    engine: LocalEngine, warehouse: str, hostile: Path
) -> None:
    before = Snapshot(engine, warehouse, strict=False)
    mark = state.get_watermark(engine.client_table(), PIPELINE, VANISH)
    assert mark["last_key"] is not None  # synced by the module's first run
    execute_alone(f"DROP TABLE IF EXISTS {quote_mysql_table(*VANISH.split('.'))}")
    try:
        description = sync(engine, VANISH)
        _, message = failure(description)
        assert VANISH in message and "SchemaError" in message, message
        assert "does not exist" in message, message
        before.assert_unchanged(engine, warehouse)
        assert state.get_lock(engine.client_table(), PIPELINE, VANISH) is None
    finally:
        conn = mysql_conn()
        sample.seed(conn, DATABASE, name_of(VANISH), 120)
        conn.close()
