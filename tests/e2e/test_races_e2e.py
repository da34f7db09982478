"""Races: writers changing the source while runs execute, two executions on one table,
and an S3 clean-up while a run extracts and loads.

After the writers stop and a final run, the warehouse equals the source exactly (every
column of every row). Every assertion is on rows, S3 objects or DynamoDB items.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from myshift import clean, load, state
from myshift.config import load_pipeline
from myshift.identifiers import quote_mysql_table
from myshift.local import sample
from myshift.local.engine import Fault, LocalEngine

from tests.e2e.conftest import (
    DATABASE,
    Comparison,
    compare_table,
    connect_as_pipeline_user,
    drop_source_table,
    isolated_warehouse,
    pipeline_yaml,
    reset_table,
    run_fast,
    run_id_of,
)
from tests.e2e.conftest import s3_keys as bucket_keys
from tests.support.mariadb import connect as mysql_conn

PIPELINE = "e2e_races"
SCHEMA = "races_dw"
TABLE_NAME = f"races_orders_{os.getpid()}"  # test sessions run side by side
TABLE = f"{DATABASE}.{TABLE_NAME}"
SEED_ROWS = 800
SAFETY_LAG = 1  # seconds; late transactions stay open longer than this
WRITER_IDS = 1_000_000
LATE_IDS = 2_000_000
TIE_IDS = 3_000_000


@pytest.fixture(scope="module")
def warehouse(engine: LocalEngine) -> Iterator[str]:
    with isolated_warehouse(engine, "myshift_warehouse_races") as dsn:
        yield dsn


@pytest.fixture(scope="module")
def pipeline_file(pipelines_dir: Path) -> Iterator[Path]:
    path = pipelines_dir / f"{PIPELINE}.yml"
    text = pipeline_yaml(PIPELINE, [TABLE], schema=SCHEMA, chunk_rows=200)
    path.write_text(
        text.replace("safety_lag_seconds: 0", f"safety_lag_seconds: {SAFETY_LAG}").replace(
            "max_concurrent_chunks: 2", "max_concurrent_chunks: 3"
        )
    )
    yield path
    drop_source_table(TABLE_NAME)


@pytest.fixture()
def fresh(pipeline_file: Path, engine: LocalEngine, warehouse: str) -> Iterator[None]:
    reset_table(engine, warehouse, pipeline=PIPELINE, table=TABLE, rows=SEED_ROWS, schema=SCHEMA)
    yield
    engine.clear_faults()


def s3_keys(engine: LocalEngine) -> list[str]:
    return bucket_keys(engine, f"data/{PIPELINE}/")


def compare(engine: LocalEngine, dsn: str) -> Comparison:
    return compare_table(engine, dsn, PIPELINE, TABLE, SCHEMA)


def sync(engine: LocalEngine, **extra: Any) -> dict:
    return run_fast(engine, {"pipeline": PIPELINE, "tables": [TABLE], **extra})


# --- writers ---------------------------------------------------------------------------

QUALIFIED = quote_mysql_table(DATABASE, TABLE_NAME)
INSERT = (
    f"INSERT INTO {QUALIFIED} (id, order_no, merchant_id, amount, fee, currency, status, "
    "note, created_at, updated_at) VALUES "
)


def values_sql(row_id: int, stamp: str) -> str:
    """One row's VALUES tuple; `stamp` is an SQL expression for updated_at."""
    return (
        f"({row_id}, 'RACE-{row_id}', {row_id % 5000}, {row_id % 997}.25, NULL, 'EUR', 1, "
        f"'written by a race', {stamp}, {stamp})"
    )


@dataclass
class Writers:
    """Two threads writing the source like an application, while runs execute.

    - the writer: batches of inserts sharing one updated_at (ties), updates of several
      rows in one statement (ties again), and rows stamped with whole seconds
      (`NOW()`, up to a second in the past: ties with any bound in that second);
    - the late committer: opens a transaction, writes rows stamped NOW(6), holds the
      transaction open longer than the safety lag, then commits (the classic loss:
      rows committed late with an earlier timestamp).
    """

    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[BaseException] = field(default_factory=list)
    writes: int = 0
    late_commits: int = 0
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for target in (self._write, self._commit_late):
            thread = threading.Thread(target=self._guard(target), daemon=True)
            thread.start()
            self.threads.append(thread)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)
        assert not any(t.is_alive() for t in self.threads)
        assert self.errors == [], self.errors

    def _guard(self, target: Any) -> Any:
        def body() -> None:
            try:
                target()
            except BaseException as exc:
                self.errors.append(exc)

        return body

    def _write(self) -> None:
        rng = random.Random(11)
        conn = mysql_conn()
        next_id = WRITER_IDS
        step = 0
        try:
            with conn.cursor() as cursor:
                while not self.stop.is_set():
                    step += 1
                    stamp = "NOW()" if step % 5 == 0 else "@t"
                    cursor.execute("SET @t = NOW(6)")
                    rows = ", ".join(values_sql(next_id + i, stamp) for i in range(4))
                    cursor.execute(INSERT + rows)
                    next_id += 4
                    ids = ", ".join(str(2 * rng.randint(1, SEED_ROWS // 2)) for _ in range(3))
                    cursor.execute(
                        f"UPDATE {QUALIFIED} SET amount = amount + 1, "
                        f"note = CONCAT('writer ', {step}), updated_at = {stamp} "
                        f"WHERE id IN ({ids})"
                    )
                    self.writes += 2
                    time.sleep(rng.uniform(0.01, 0.05))
        finally:
            conn.close()

    def _commit_late(self) -> None:
        rng = random.Random(13)
        conn = mysql_conn(autocommit=False)
        next_id = LATE_IDS
        try:
            with conn.cursor() as cursor:
                while not self.stop.is_set():
                    cursor.execute("BEGIN")
                    odd = 2 * rng.randint(0, SEED_ROWS // 2 - 1) + 1
                    cursor.execute(
                        f"UPDATE {QUALIFIED} SET amount = amount + 100, "
                        f"note = 'late commit', updated_at = NOW(6) WHERE id = {odd}"
                    )
                    cursor.execute(INSERT + values_sql(next_id, "NOW(6)"))
                    next_id += 1
                    time.sleep(SAFETY_LAG + 1.5)  # open across at least one plan
                    conn.commit()
                    self.late_commits += 1
                    time.sleep(0.2)
        finally:
            conn.rollback()
            conn.close()


def tie_with_the_bound(observed: list[dict]) -> Any:
    """At each commit of extraction, insert rows stamped exactly the run's bound and the
    run's upper key's cursor (with larger ids): they tie with what the run just read and
    must be picked up by the next run, never skipped."""
    next_id = [TIE_IDS]

    def when(event: dict) -> bool:
        if event.get("action") != "commit_extraction":
            return False
        item = event["table"]
        stamps = [s for s in (item.get("bound"), (item.get("upper_key") or [None])[0]) if s]
        conn = mysql_conn()
        try:
            with conn.cursor() as cursor:
                for stamp in stamps:
                    cursor.execute(INSERT + values_sql(next_id[0], "%s"), (stamp, stamp))
                    next_id[0] += 1
        finally:
            conn.close()
        observed.append({"run_id": item["run_id"], "stamps": stamps})
        return False  # never fails: it only writes

    return when


@pytest.mark.slow
def test_writers_during_runs_then_a_final_run_equals_the_source(
    engine: LocalEngine, warehouse: str, fresh: None
) -> None:
    ties: list[dict] = []
    engine.inject_fault(Fault("myshift-state", None, times=10**6, when=tie_with_the_bound(ties)))
    writers = Writers()
    writers.start()
    try:
        time.sleep(0.5)
        for _ in range(3):
            during = sync(engine)
            assert during["status"] == "SUCCEEDED", during.get("cause")
            # Each run's own load is internally consistent: no duplicate keys, ever.
            assert compare(engine, warehouse).duplicate == 0
    finally:
        writers.finish()
    assert writers.writes > 0 and writers.late_commits >= 2
    assert len(ties) == 3 and all(t["stamps"] for t in ties)
    engine.clear_faults()
    time.sleep(SAFETY_LAG + 1)  # the last writes are older than the safety lag now
    final = sync(engine)
    assert final["status"] == "SUCCEEDED", final.get("cause")
    result = compare(engine, warehouse)
    assert result.equal, result
    assert result.target_rows == result.source_rows > SEED_ROWS


def test_late_commit_is_not_lost_by_a_run_planned_while_it_is_open(
    engine: LocalEngine, warehouse: str, fresh: None
) -> None:
    """Deterministic: a transaction stamps a row, stays open past the safety lag while a
    run plans and loads, then commits; the next run loads the row."""
    first = sync(engine)
    assert first["status"] == "SUCCEEDED", first.get("cause")
    late = mysql_conn(autocommit=False)
    try:
        with late.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute(INSERT + values_sql(LATE_IDS, "NOW(6)"))
            cursor.execute(
                f"UPDATE {QUALIFIED} SET note = 'late', updated_at = NOW(6) WHERE id = 5"
            )
        time.sleep(SAFETY_LAG + 1)
        # Rows committed while the late transaction is open, stamped after it started.
        other = mysql_conn()
        with other.cursor() as cursor:
            cursor.execute(INSERT + values_sql(LATE_IDS + 1, "NOW(6)"))
        other.close()
        time.sleep(SAFETY_LAG + 0.5)
        during = sync(engine)
        assert during["status"] == "SUCCEEDED", during.get("cause")
        late.commit()
    finally:
        late.close()
    time.sleep(SAFETY_LAG + 0.5)
    final = sync(engine)
    assert final["status"] == "SUCCEEDED", final.get("cause")
    result = compare(engine, warehouse)
    assert result.equal, result
    assert result.source_rows == SEED_ROWS + 2


# --- two executions on one table -------------------------------------------------------


def slow_plan(seconds: float) -> Fault:
    def when(event: dict) -> bool:
        time.sleep(seconds)
        return False

    return Fault("myshift-plan", None, times=10**6, when=when)


def start(engine: LocalEngine, name: str) -> str:
    assert engine.resources is not None
    return engine.client("stepfunctions").start_execution(
        stateMachineArn=engine.resources.state_machine_arn,
        name=name,
        input=json.dumps({"pipeline": PIPELINE, "tables": [TABLE]}),
    )["executionArn"]


def wait(engine: LocalEngine, arn: str, timeout: float = 300) -> dict:
    sfn = engine.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while (description := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return description


def test_a_second_execution_started_while_the_first_holds_the_lock_is_skipped(
    engine: LocalEngine, warehouse: str, fresh: None
) -> None:
    """An overlapping run (a schedule that comes round before the last run ended) ends
    as skipped: the execution succeeds, touches nothing, fails no task (no alarm); the
    first run loads every row."""
    engine.inject_fault(slow_plan(2.0))
    first_name = f"races-first-{time.time_ns()}"
    first_arn = start(engine, first_name)
    table = engine.client_table()
    deadline = time.monotonic() + 60
    while state.get_lock(table, PIPELINE, TABLE) is None:
        assert time.monotonic() < deadline, "the first execution never took the lock"
        time.sleep(0.05)
    second_name = f"races-second-{time.time_ns()}"
    second = wait(engine, start(engine, second_name))
    assert state.get_lock(table, PIPELINE, TABLE)["owner"] == first_name  # left alone
    first = wait(engine, first_arn)
    assert first["status"] == "SUCCEEDED", first.get("cause")
    assert json.loads(first["output"])["status"] == "succeeded"
    assert second["status"] == "SUCCEEDED", second.get("cause")
    outcome = json.loads(second["output"])
    assert outcome["status"] == "skipped" and outcome["tables_skipped"] == 1, outcome
    assert outcome["rows_extracted"] == 0 and outcome["rows_loaded"] == 0
    assert_no_task_failed(engine, second["executionArn"])
    runs = {r["run_id"]: r for r in state.list_runs(table, PIPELINE, TABLE)}
    assert runs[second_name]["status"] == "skipped"
    assert f"locked by {first_name}" in runs[second_name]["cause"]
    assert "error" not in runs[second_name]
    assert runs[first_name]["status"] == "succeeded"
    mark = state.get_watermark(table, PIPELINE, TABLE)
    assert mark["last_run_id"] == first_name and mark["redshift_status"] == "success"
    assert state.get_lock(table, PIPELINE, TABLE) is None
    result = compare(engine, warehouse)
    assert result.equal and result.target_rows == SEED_ROWS, result


def assert_no_task_failed(engine: LocalEngine, execution_arn: str) -> None:
    """No task of the execution failed (the Lambda error alarms count those) and it
    did not fail itself (the execution alarms)."""
    sfn = engine.client("stepfunctions")
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    failed = [e["type"] for e in events if e["type"].endswith("Failed")]
    assert not failed, failed


def create_warehouse_schema(engine: LocalEngine, dsn: str) -> None:
    """The run's prepare step, done beforehand (see the prepare race test below)."""
    with connect_as_pipeline_user(engine, dsn, PIPELINE) as pg:
        for sql in load.prepare_statements(SCHEMA):
            pg.execute(sql)


def test_two_executions_started_at_once_exactly_one_runs(
    engine: LocalEngine, warehouse: str, fresh: None
) -> None:
    create_warehouse_schema(engine, warehouse)  # isolates the lock race from the prepare race
    # The winner holds the lock through a 5 s plan: the twin starts well inside it,
    # even on a loaded machine.
    engine.inject_fault(slow_plan(5.0))
    names = [f"races-twin-{i}-{time.time_ns()}" for i in range(2)]
    arns = [start(engine, name) for name in names]
    descriptions = [wait(engine, arn) for arn in arns]
    assert [d["status"] for d in descriptions] == ["SUCCEEDED"] * 2, [
        d.get("cause") for d in descriptions
    ]
    outcomes = [json.loads(d["output"])["status"] for d in descriptions]
    assert sorted(outcomes) == ["skipped", "succeeded"], outcomes
    winner = names[outcomes.index("succeeded")]
    loser = names[outcomes.index("skipped")]
    table = engine.client_table()
    assert f"locked by {winner}" in state.get_run(table, PIPELINE, TABLE, loser)["cause"]
    assert state.get_lock(table, PIPELINE, TABLE) is None
    assert state.get_watermark(table, PIPELINE, TABLE)["last_run_id"] == winner
    result = compare(engine, warehouse)
    assert result.equal and result.target_rows == SEED_ROWS, result


def test_a_prepare_racing_another_executions_prepare_does_not_fail_the_run(
    engine: LocalEngine, warehouse: str, fresh: None
) -> None:
    """Two executions of one pipeline (different tables: no lock between them) or of two
    pipelines sharing a target schema start together: both create the schema. Made
    deterministic: our transaction creates it first and commits while the run's
    CREATE SCHEMA IF NOT EXISTS waits on it."""
    # A transaction: the other execution's prepare (the same database user).
    other = connect_as_pipeline_user(engine, warehouse, PIPELINE, autocommit=False)
    try:
        other.execute(f"CREATE SCHEMA {SCHEMA}")
        arn = start(engine, f"races-prepare-{time.time_ns()}")
        deadline = time.monotonic() + 60
        while True:
            with psycopg.connect(warehouse, autocommit=True) as probe:
                waiting = probe.execute(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query ILIKE '%%CREATE SCHEMA%%'"
                ).fetchone()[0]
            if waiting:
                break
            assert time.monotonic() < deadline, "the run's prepare never waited on ours"
            time.sleep(0.05)
        other.commit()
    finally:
        other.close()
    description = wait(engine, arn)
    assert description["status"] == "SUCCEEDED", description.get("cause")
    result = compare(engine, warehouse)
    assert result.equal and result.target_rows == SEED_ROWS, result


# --- s3clean during a run ----------------------------------------------------------------


def clean_now(engine: LocalEngine) -> clean.TableCleanup:
    """What a clean of the table with no age limit does right now (the riskiest call)."""
    return clean.clean_table(
        engine.client("s3"),
        engine.client_table(),
        bucket=engine.bucket,
        data_prefix="data",
        pipeline=load_pipeline(engine.pipelines_dir, PIPELINE),
        table=TABLE,
        now=dt.datetime.now(dt.UTC),
    )


def change_source() -> None:
    conn = mysql_conn()
    try:
        later = sample.BASE_TIME + dt.timedelta(days=2)
        sample.update_rows(conn, DATABASE, TABLE_NAME, every=9, updated_at=later)
        sample.insert_rows(conn, DATABASE, TABLE_NAME, SEED_ROWS + 1, 150, start=later)
    finally:
        conn.close()


def test_s3clean_while_a_run_loads_deletes_only_loaded_files(
    engine: LocalEngine, warehouse: str, fresh: None
) -> None:
    first = sync(engine)
    assert first["status"] == "SUCCEEDED", first.get("cause")
    first_files = {k for k in s3_keys(engine) if f"run={run_id_of(first)}" in k}
    assert first_files
    change_source()
    cleanups: list[clean.TableCleanup] = []

    def clean_when(event: dict) -> bool:
        if event.get("action") == "submit":  # the batch was just submitted
            cleanups.append(clean_now(engine))
        return False

    def clean_mid_extraction(event: dict) -> bool:
        if event["chunk"]["index"] == 0:
            cleanups.append(clean_now(engine))
        return False

    engine.inject_fault(Fault("myshift-extract", None, when=clean_mid_extraction, after=True))
    engine.inject_fault(Fault("myshift-load", None, when=clean_when, after=True))
    second = sync(engine)
    assert second["status"] == "SUCCEEDED", second.get("cause")
    assert len(cleanups) == 2
    second_id = run_id_of(second)
    deleted = {f.key for c in cleanups for f in c.delete}
    # Only the first run's loaded files (and its manifest) were deleted...
    assert deleted and deleted <= first_files
    assert not any(second_id in key for key in deleted)
    assert all(c.errors == [] for c in cleanups)
    # ...and the second run loaded every one of its files.
    files = state.list_files(engine.client_table(), PIPELINE, TABLE)
    assert files and {f["status"] for f in files if f["run_id"] == second_id} == {"loaded"}
    remaining = set(s3_keys(engine))
    assert {f["s3_key"] for f in files if f["run_id"] == second_id} <= remaining
    result = compare(engine, warehouse)
    assert result.equal, result


@pytest.mark.slow
def test_s3clean_hammering_during_runs_never_breaks_one(
    engine: LocalEngine, warehouse: str, fresh: None
) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []
    rounds = [0]

    def hammer() -> None:
        try:
            while not stop.is_set():
                cleanup = clean_now(engine)
                assert cleanup.errors == []
                rounds[0] += 1
                time.sleep(0.05)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=hammer, daemon=True)
    thread.start()
    try:
        first = sync(engine)
        assert first["status"] == "SUCCEEDED", first.get("cause")
        change_source()
        second = sync(engine)
        assert second["status"] == "SUCCEEDED", second.get("cause")
    finally:
        stop.set()
        thread.join(timeout=30)
    assert errors == [], errors
    assert rounds[0] > 5
    result = compare(engine, warehouse)
    assert result.equal, result
