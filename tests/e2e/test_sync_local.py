"""The real state machine, run locally, against MariaDB and the PostgreSQL warehouse.

Every assertion is on rows: counted and compared value by value in both databases.
"""

from __future__ import annotations

import datetime as dt

import psycopg
import pymysql
import pytest
from myshift import state
from myshift.local import sample
from myshift.local.engine import LocalEngine

from tests.e2e.conftest import DATABASE, PIPELINE, TABLE, TARGET_SCHEMA, normalized_row, run

QUALIFIED = f"{DATABASE}.{TABLE}"
COLUMNS = [
    "id",
    "order_no",
    "merchant_id",
    "amount",
    "fee",
    "currency",
    "status",
    "note",
    "created_at",
    "updated_at",
]


def source_rows(mysql: pymysql.Connection) -> dict[int, tuple]:
    with mysql.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(COLUMNS)} FROM {DATABASE}.{TABLE}")
        return {row[0]: tuple(row) for row in cursor.fetchall()}


def warehouse_rows(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(f"SELECT {', '.join(COLUMNS)} FROM {TARGET_SCHEMA}.{TABLE}").fetchall()


def assert_warehouse_equals_source(mysql: pymysql.Connection, dsn: str, ids: set[int]) -> None:
    """The warehouse holds exactly the source rows with these ids, value by value."""
    source = source_rows(mysql)
    target = warehouse_rows(dsn)
    target_ids = [row[0] for row in target]
    assert len(target_ids) == len(set(target_ids)), "duplicate keys in the warehouse"
    assert set(target_ids) == ids
    mismatched = [r[0] for r in target if normalized_row(r) != normalized_row(source[r[0]])]
    assert mismatched == [], f"{len(mismatched)} rows differ, e.g. ids {mismatched[:5]}"


@pytest.fixture(scope="module")
def seeded() -> int:
    conn = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    try:
        sample.seed(conn, DATABASE, TABLE, 3_000)
    finally:
        conn.close()
    return 3_000


def test_full_sync_in_three_runs(
    engine: LocalEngine, warehouse_dsn: str, mysql: pymysql.Connection, seeded: int
) -> None:
    # 1. limit x max_chunks: exactly 1,000 rows, the lowest keys.
    first = run(
        engine, {"pipeline": PIPELINE, "tables": [QUALIFIED], "limit": 250, "max_chunks": 4}
    )
    assert first["status"] == "SUCCEEDED", first.get("cause")
    result = first["output_json"]["results"][0]
    assert result.get("rows_extracted") == 1_000, sorted(result.items())
    assert result["files_extracted"] == 4
    assert result["rows_loaded"] == 1_000
    with mysql.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {QUALIFIED} ORDER BY updated_at, id LIMIT 1000")
        first_ids = {row[0] for row in cursor.fetchall()}
    assert_warehouse_equals_source(mysql, warehouse_dsn, first_ids)
    mark = state.get_watermark(engine.client_table(), PIPELINE, QUALIFIED)
    assert mark["mysql_rows_extracted"] == 1_000 and mark["redshift_rows_loaded"] == 1_000

    # 2. the rest, up to the frozen bound.
    second = run(engine, {"pipeline": PIPELINE, "tables": [QUALIFIED]})
    assert second["status"] == "SUCCEEDED", second.get("cause")
    assert second["output_json"]["results"][0]["rows_extracted"] == seeded - 1_000
    assert_warehouse_equals_source(mysql, warehouse_dsn, set(range(1, seeded + 1)))

    # 3. updates replace old versions; inserts arrive; no duplicates.
    now = dt.datetime.now().replace(microsecond=123456) - dt.timedelta(seconds=5)
    updated = sample.update_rows(mysql, DATABASE, TABLE, every=7, updated_at=now)
    sample.insert_rows(
        mysql, DATABASE, TABLE, seeded + 1, 200, start=now - dt.timedelta(seconds=100)
    )
    third = run(engine, {"pipeline": PIPELINE, "tables": [QUALIFIED]})
    assert third["status"] == "SUCCEEDED", third.get("cause")
    result = third["output_json"]["results"][0]
    assert result["rows_extracted"] == updated + 200
    assert result["rows_replaced"] == updated
    assert_warehouse_equals_source(mysql, warehouse_dsn, set(range(1, seeded + 201)))

    # 4. nothing new: an empty run changes nothing.
    fourth = run(engine, {"pipeline": PIPELINE, "tables": [QUALIFIED]})
    assert fourth["status"] == "SUCCEEDED", fourth.get("cause")
    assert fourth["output_json"]["results"][0]["rows_extracted"] == 0
    assert_warehouse_equals_source(mysql, warehouse_dsn, set(range(1, seeded + 201)))


@pytest.mark.parametrize(
    ("execution_input", "message"),
    [
        ({"pipeline": "nope"}, "unknown pipeline 'nope'"),
        ({"pipeline": PIPELINE, "tables": ["x.y"]}, "has no table 'x.y'"),
        ({"pipeline": PIPELINE, "limit": 0}, "limit"),
        ({"pipeline": PIPELINE, "limit": "10"}, "limit"),
        ({"pipeline": PIPELINE, "max_chunks": -1}, "max_chunks"),
        ({"pipeline": PIPELINE, "mode": "everything"}, "mode"),
        ({"pipeline": PIPELINE, "surprise": 1}, "surprise"),
    ],
)
def test_bad_input_fails_at_once_and_changes_nothing(
    engine: LocalEngine, execution_input: dict, message: str
) -> None:
    table = engine.client_table()
    before = table.scan()["Items"]
    description = run(engine, execution_input)
    assert description["status"] == "FAILED"
    assert message in description.get("cause", "")
    assert table.scan()["Items"] == before
