"""The fault matrix: fail the pipeline at each step, then let a retry or the next run
recover; afterwards the warehouse equals the source exactly (every column compared).

Faults are injected into the in-process Lambdas of the local engine (`Fault`): before a
handler runs, after it ran (its side effects happened), on its first attempt only or on
every attempt. Every assertion is on rows, S3 objects or DynamoDB items, never on logs.
The matrix (step x outcome) is printed at the end of the module (visible with -s).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from myshift import load, state
from myshift.errors import (
    LoadError,
    SourceQueryError,
    SourceUnavailableError,
    StorageUnavailableError,
    WarehouseUnavailableError,
)
from myshift.extract import chunk_object_key
from myshift.local import sample
from myshift.local.engine import Fault, LocalEngine

from tests.e2e.conftest import (
    DATABASE,
    Comparison,
    clear_partition,  # noqa: F401 (the other e2e modules import it from here)
    compare_table,
    drop_source_table,
    isolated_warehouse,
    pipeline_yaml,
    reset_table,
    run_fast,
    run_id_of,
)
from tests.e2e.conftest import s3_keys as bucket_keys
from tests.support.mariadb import connect

PIPELINE = "e2e_faults"
SCHEMA = "faults_dw"
TABLE_NAME = f"faults_orders_{os.getpid()}"  # test sessions run side by side
TABLE = f"{DATABASE}.{TABLE_NAME}"
ROWS = 600
CHUNK_ROWS = 150  # 4 chunks of the seeded rows
CHUNKS = ROWS // CHUNK_ROWS
DATA_PREFIX = f"data/{PIPELINE}/"
LATER = sample.BASE_TIME + dt.timedelta(days=3)


class InjectedCrash(Exception):
    """An error no Retry lists: the step fails once, for good (a crash, a bug)."""


# --- the matrix -------------------------------------------------------------------------


@dataclass
class MatrixRow:
    step: str
    fault: str
    outcome: str  # what the faulted run did
    recovery: str  # what brought the data in
    missing: int
    duplicate: int
    differing: int

    @property
    def equal(self) -> bool:
        return self.missing == self.duplicate == self.differing == 0


MATRIX: list[MatrixRow] = []


def render_matrix(rows: list[MatrixRow]) -> str:
    header = ("step", "fault", "faulted run", "recovery", "rows equal (missing/dup/diff)")
    lines = [
        (
            r.step,
            r.fault,
            r.outcome,
            r.recovery,
            f"{'yes' if r.equal else 'NO'} ({r.missing}/{r.duplicate}/{r.differing})",
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=True)]

    def fmt(values: tuple[str, ...]) -> str:
        return " | ".join(str(v).ljust(w) for v, w in zip(values, widths, strict=True))

    out = [fmt(header), "-+-".join("-" * w for w in widths), *[fmt(line) for line in lines]]
    return "\n".join(out)


@pytest.fixture(scope="module", autouse=True)
def print_matrix(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    text = render_matrix(MATRIX)
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            print(f"\n\nFAULT MATRIX ({len(MATRIX)} cases)\n{text}\n")
    else:
        print(f"\n\nFAULT MATRIX ({len(MATRIX)} cases)\n{text}\n")


# --- fixtures and helpers ----------------------------------------------------------------


@pytest.fixture(scope="module")
def warehouse(engine: LocalEngine) -> Iterator[str]:
    with isolated_warehouse(engine, "myshift_warehouse_faults") as dsn:
        yield dsn


@pytest.fixture(scope="module")
def pipeline_file(pipelines_dir: Path) -> Iterator[Path]:
    path = pipelines_dir / f"{PIPELINE}.yml"
    path.write_text(pipeline_yaml(PIPELINE, [TABLE], schema=SCHEMA, chunk_rows=CHUNK_ROWS))
    yield path
    drop_source_table(TABLE_NAME)


@pytest.fixture()
def fresh(pipeline_file: Path, engine: LocalEngine, warehouse: str) -> Iterator[None]:
    """The source re-seeded; this pipeline's state items, files and warehouse schema gone."""
    reset_table(engine, warehouse, pipeline=PIPELINE, table=TABLE, rows=ROWS, schema=SCHEMA)
    yield
    engine.clear_faults()


def s3_keys(engine: LocalEngine, prefix: str = DATA_PREFIX) -> list[str]:
    return bucket_keys(engine, prefix)


def chunk_keys_of(engine: LocalEngine, run_id: str) -> list[str]:
    return [k for k in s3_keys(engine) if f"/run={run_id}/" in k and k.endswith(".parquet")]


def compare(engine: LocalEngine, dsn: str) -> Comparison:
    return compare_table(engine, dsn, PIPELINE, TABLE, SCHEMA)


def warehouse_count(dsn: str) -> int | None:
    with psycopg.connect(dsn) as pg:
        if pg.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.{TABLE_NAME}",)).fetchone()[0] is None:
            return None
        return int(pg.execute(f"SELECT COUNT(*) FROM {SCHEMA}.{TABLE_NAME}").fetchone()[0])


def ledger_runs(dsn: str) -> list[str]:
    """The runs the table's ledger recorded loads of."""
    ledger = f"{SCHEMA}.{load.ledger_name(TABLE_NAME)}"
    with psycopg.connect(dsn) as pg:
        if pg.execute("SELECT to_regclass(%s)", (ledger,)).fetchone()[0] is None:
            return []
        return [r[0] for r in pg.execute(f"SELECT run_id FROM {ledger}").fetchall()]


def change_source() -> None:
    """Newer versions of some rows and new rows, between the failure and the recovery."""
    conn = connect()
    try:
        sample.update_rows(conn, DATABASE, TABLE_NAME, every=7, updated_at=LATER)
        sample.insert_rows(conn, DATABASE, TABLE_NAME, ROWS + 1, 90, start=LATER)
    finally:
        conn.close()


def sync(engine: LocalEngine, **extra: Any) -> dict:
    return run_fast(engine, {"pipeline": PIPELINE, "tables": [TABLE], **extra})


def watermark(engine: LocalEngine) -> dict:
    return state.get_watermark(engine.client_table(), PIPELINE, TABLE)


def files(engine: LocalEngine, run_id: str | None = None) -> list[dict]:
    found = state.list_files(engine.client_table(), PIPELINE, TABLE)
    return [f for f in found if run_id is None or f["run_id"] == run_id]


def lock(engine: LocalEngine) -> dict | None:
    return state.get_lock(engine.client_table(), PIPELINE, TABLE)


def recover_and_record(
    engine: LocalEngine, dsn: str, step: str, fault: str, outcome: str, **extra: Any
) -> Comparison:
    """Change the source, run again; the run succeeds and the warehouse equals the source."""
    change_source()
    recovery = sync(engine, **extra)
    assert recovery["status"] == "SUCCEEDED", recovery.get("cause")
    assert lock(engine) is None
    return check_and_record(engine, dsn, step, fault, outcome, "next run")


def check_and_record(
    engine: LocalEngine, dsn: str, step: str, fault: str, outcome: str, recovery: str
) -> Comparison:
    result = compare(engine, dsn)
    MATRIX.append(
        MatrixRow(
            step, fault, outcome, recovery, result.missing, result.duplicate, result.differing
        )
    )
    assert result.equal, result
    assert result.target_rows == result.source_rows
    return result


def assert_failed(description: dict, *needles: str) -> None:
    assert description["status"] == "FAILED", description.get("output")
    cause = description.get("cause") or ""
    for needle in needles:
        assert needle in cause, cause


def recover_leaving_dead_files(
    engine: LocalEngine, dsn: str, run_id: str, step: str, fault: str, outcome: str
) -> None:
    """Nothing of the failed run `run_id` was committed; the next run recovers; the failed
    run's files were never loaded (their items still say `written`)."""
    assert_nothing_committed(engine, dsn)
    recover_and_record(engine, dsn, step, fault, outcome)
    assert {f["status"] for f in files(engine, run_id)} == {"written"}


def chunk_is(index: int) -> Any:
    return lambda event: event["chunk"]["index"] == index


def action_is(name: str) -> Any:
    return lambda event: event.get("action") == name


def extract_fault(error: Exception, chunk: int, *, after: bool = False) -> Fault:
    """The extract Lambda fails with `error` at chunk `chunk`, on every attempt."""
    return Fault("myshift-extract", error, times=100, when=chunk_is(chunk), after=after)


def state_crash(action: str, message: str, *, after: bool = False) -> Fault:
    """The state Lambda crashes once on `action`: before it ran, or after (its write done)."""
    return Fault(
        "myshift-state", InjectedCrash(message), times=1, when=action_is(action), after=after
    )


def failed_sync(engine: LocalEngine, fault: Fault, *needles: str, fired: int | None = 1) -> dict:
    """Arm `fault` and run: the run fails, naming `needles`, the fault having fired `fired`
    times (None: not checked)."""
    engine.inject_fault(fault)
    failed = sync(engine)
    assert_failed(failed, *needles)
    if fired is not None:
        assert fault.fired == fired
    return failed


def assert_nothing_committed(engine: LocalEngine, dsn: str) -> None:
    """The MySQL side did not advance, nothing is extracted or loaded, no lock is left."""
    mark = watermark(engine)
    assert mark["last_key"] is None
    assert mark["mysql_status"] == "failed"
    assert mark["mysql_rows_extracted"] == 0 and mark["redshift_rows_loaded"] == 0
    assert [f for f in files(engine) if f["status"] != "written"] == []
    assert lock(engine) is None
    assert not warehouse_count(dsn)


# --- plan ------------------------------------------------------------------------------


def test_plan_fails_then_next_run_recovers(
    engine: LocalEngine, warehouse: str, fresh: None
) -> None:
    # Terminal: fired once, not retried.
    failed_sync(
        engine,
        Fault("myshift-plan", SourceQueryError("injected: plan refused"), times=1),
        "injected: plan refused",
    )
    assert_nothing_committed(engine, warehouse)
    assert s3_keys(engine) == []
    recover_and_record(engine, warehouse, "plan", "terminal, before", "FAILED, nothing changed")


# --- transient errors: retried by the state machine within the run ----------------------


def test_a_transient_error_at_every_step_is_retried_within_the_run(
    engine: LocalEngine, warehouse: str, fresh: None
) -> None:
    """One run, a transient error on the first attempt of each step (some after the
    step's side effects happened); every retry converges on exactly one file per chunk,
    one load and one ledger entry."""
    faults = {
        ("plan", "transient, 1st attempt"): Fault(
            "myshift-plan", SourceUnavailableError("injected: connection lost")
        ),
        ("extract chunk 2", "transient, 1st attempt"): Fault(
            "myshift-extract", SourceUnavailableError("injected: lost"), when=chunk_is(2)
        ),
        ("extract chunk 1", "transient, after file written"): Fault(
            "myshift-extract",
            SourceUnavailableError("injected: lost after upload"),
            when=chunk_is(1),
            after=True,
        ),
        ("commit extraction", "transient, before"): Fault(
            "myshift-state",
            StorageUnavailableError("injected: throttled"),
            when=action_is("commit_extraction"),
        ),
        ("load submit", "transient, after submit"): Fault(
            "myshift-load",
            WarehouseUnavailableError("injected: reply lost"),
            when=action_is("submit"),
            after=True,
        ),
        ("commit load", "transient, before"): Fault(
            "myshift-state",
            StorageUnavailableError("injected: throttled"),
            when=action_is("commit_load"),
        ),
    }
    for fault in faults.values():
        engine.inject_fault(fault)
    description = sync(engine)
    assert description["status"] == "SUCCEEDED", description.get("cause")
    assert {k: f.fired for k, f in faults.items()} == {k: 1 for k in faults}
    run_id = run_id_of(description)
    # Retried chunks overwrote their own object and item: one of each per chunk.
    assert len(chunk_keys_of(engine, run_id)) == CHUNKS
    assert sorted(f["chunk"] for f in files(engine, run_id)) == list(range(CHUNKS))
    assert {f["status"] for f in files(engine, run_id)} == {"loaded"}
    result = description["output_json"]["results"][0]
    assert result["rows_extracted"] == ROWS and result["rows_loaded"] == ROWS
    # The load was submitted twice: the second submit got the first's statement back
    # (same idempotency token), so one batch ran, and the ledger has the run once.
    loads = engine.warehouse_statements(f"myshift-{run_id}")
    assert len([s for s in loads if s.get("IsBatchStatement")]) == 1, loads
    assert {s["Owner"] for s in loads} == {engine.stack.functions["load"].role_arn}
    assert ledger_runs(warehouse) == [run_id]
    comparison = compare(engine, warehouse)
    for step, fault in faults:
        MATRIX.append(
            MatrixRow(
                step,
                fault,
                "SUCCEEDED",
                "state machine retry",
                comparison.missing,
                comparison.duplicate,
                comparison.differing,
            )
        )
    assert comparison.equal and comparison.target_rows == ROWS, comparison


# --- extract ---------------------------------------------------------------------------


@pytest.mark.slow
def test_extract_chunk_failing_every_attempt_fails_the_run_and_the_next_recovers(
    engine: LocalEngine, warehouse: str, fresh: None
) -> None:
    failed = failed_sync(
        engine,
        extract_fault(SourceUnavailableError("injected: still lost"), 2),
        "SourceUnavailableError",
        "injected: still lost",
        fired=4,  # the first attempt and the state machine's 3 retries
    )
    assert_nothing_committed(engine, warehouse)
    run_id = run_id_of(failed)
    assert 2 not in {f["chunk"] for f in files(engine, run_id)}
    engine.clear_faults()
    recover_and_record(
        engine,
        warehouse,
        "extract chunk 2",
        "transient, every attempt",
        "FAILED after 4 attempts",
    )


def test_extract_chunk_terminal_error_fails_at_once_and_the_next_run_recovers(
    engine: LocalEngine, warehouse: str, fresh: None
) -> None:
    failed_sync(
        engine,
        extract_fault(SourceQueryError("injected: refused"), 1),
        "SourceQueryError",
        "injected: refused",
    )
    assert_nothing_committed(engine, warehouse)
    engine.clear_faults()
    recover_and_record(
        engine, warehouse, "extract chunk 1", "terminal, every attempt", "FAILED at once"
    )


def test_extract_crashes_after_its_file_was_written_and_the_next_run_recovers(
    engine: LocalEngine, warehouse: str, fresh: None
) -> None:
    failed = failed_sync(
        engine,
        extract_fault(InjectedCrash("injected: crash after upload"), 3, after=True),
        "InjectedCrash",
    )
    # The crashed chunk's file and item exist, but nothing of the run was committed.
    run_id = run_id_of(failed)
    assert 3 in {f["chunk"] for f in files(engine, run_id)}
    engine.clear_faults()
    recover_leaving_dead_files(
        engine, warehouse, run_id, "extract chunk 3", "crash, after file written", "FAILED at once"
    )


# --- commit extraction -------------------------------------------------------------------


def test_commit_extraction_fails_before_committing(
    engine: LocalEngine, warehouse: str, fresh: None
) -> None:
    failed = failed_sync(
        engine, state_crash("commit_extraction", "injected: commit lost"), "InjectedCrash"
    )
    run_id = run_id_of(failed)
    assert len(chunk_keys_of(engine, run_id)) == CHUNKS  # every file was written...
    recover_leaving_dead_files(  # ...none committed
        engine, warehouse, run_id, "commit extraction", "crash, before", "FAILED, MySQL side kept"
    )


def test_commit_extraction_fails_after_committing(
    engine: LocalEngine, warehouse: str, fresh: None
) -> None:
    failed_sync(
        engine,
        state_crash("commit_extraction", "injected: reply lost", after=True),
        "InjectedCrash",
    )
    mark = watermark(engine)
    assert mark["last_key"] is not None and mark["mysql_status"] == "success"
    assert mark["redshift_status"] == "failed"
    assert {f["status"] for f in files(engine)} == {"extracted"}
    assert not warehouse_count(warehouse)
    assert lock(engine) is None
    recover_and_record(
        engine, warehouse, "commit extraction", "crash, after", "FAILED, files pending"
    )
    assert {f["status"] for f in files(engine)} == {"loaded"}


# --- load ------------------------------------------------------------------------------


def test_load_submit_fails_and_the_next_run_loads_the_pending_files(
    engine: LocalEngine, warehouse: str, fresh: None
) -> None:
    failed_sync(
        engine,
        Fault(
            "myshift-load",
            LoadError("injected: load refused"),
            times=1,
            when=action_is("submit"),
        ),
        "injected: load refused",
    )
    mark = watermark(engine)
    assert mark["mysql_status"] == "success" and mark["redshift_status"] == "failed"
    assert {f["status"] for f in files(engine)} == {"extracted"}
    assert not warehouse_count(warehouse)
    recover_and_record(
        engine, warehouse, "load submit", "terminal, before", "FAILED, files pending"
    )


@pytest.mark.slow
def test_load_statement_fails_on_a_corrupt_file_and_loads_once_it_is_restored(
    engine: LocalEngine, warehouse: str, fresh: None
) -> None:
    backup = sync(engine, mode="backup_only")
    assert backup["status"] == "SUCCEEDED", backup.get("cause")
    # A first load of everything, so the failed load has something to leave unchanged.
    first = sync(engine, mode="redshift_only")
    assert first["status"] == "SUCCEEDED", first.get("cause")
    before = compare(engine, warehouse)
    change_source()
    backup = sync(engine, mode="backup_only")
    assert backup["status"] == "SUCCEEDED", backup.get("cause")
    s3 = engine.client("s3")
    victim = chunk_keys_of(engine, run_id_of(backup))[0]
    original = s3.get_object(Bucket=engine.bucket, Key=victim)["Body"].read()
    s3.put_object(Bucket=engine.bucket, Key=victim, Body=original[:-8] + b"CORRUPT!")
    failed = sync(engine, mode="redshift_only")
    assert_failed(failed, "LoadError")
    # The transaction rolled back: the warehouse is exactly as it was.
    assert compare(engine, warehouse).target_rows == before.target_rows
    assert warehouse_count(warehouse) == ROWS
    assert {f["status"] for f in files(engine, run_id_of(backup))} == {"extracted"}
    assert lock(engine) is None
    s3.put_object(Bucket=engine.bucket, Key=victim, Body=original)
    recovered = sync(engine, mode="redshift_only")
    assert recovered["status"] == "SUCCEEDED", recovered.get("cause")
    check_and_record(
        engine,
        warehouse,
        "load statement (COPY)",
        "corrupt Parquet file",
        "FAILED, rolled back",
        "file restored, redshift_only",
    )


def test_a_failed_redshift_only_load_is_recorded_on_the_redshift_side(
    engine: LocalEngine, warehouse: str, fresh: None
) -> None:
    backup = sync(engine, mode="backup_only")
    assert backup["status"] == "SUCCEEDED", backup.get("cause")
    engine.inject_fault(
        Fault("myshift-load", LoadError("injected: load refused"), when=action_is("submit"))
    )
    failed = sync(engine, mode="redshift_only")
    assert_failed(failed, "injected: load refused")
    mark = watermark(engine)
    assert (mark["mysql_status"], mark["redshift_status"]) == ("success", "failed")


# --- commit load ------------------------------------------------------------------------


def test_load_committed_but_watermark_commit_failed(
    engine: LocalEngine, warehouse: str, fresh: None
) -> None:
    failed = failed_sync(
        engine, state_crash("commit_load", "injected: commit lost"), "InjectedCrash"
    )
    # The warehouse transaction committed: every row is in, exactly once.
    committed = compare(engine, warehouse)
    assert committed.equal and committed.target_rows == ROWS
    assert ledger_runs(warehouse) == [run_id_of(failed)]
    # The state did not see it: the files are still pending, the load marked failed.
    assert {f["status"] for f in files(engine)} == {"extracted"}
    assert watermark(engine)["redshift_status"] == "failed"
    assert lock(engine) is None
    # The next run loads those files again: the merge by key keeps one row per key.
    recover_and_record(engine, warehouse, "commit load", "crash, before", "FAILED, rows already in")
    assert {f["status"] for f in files(engine)} == {"loaded"}


def test_commit_load_fails_after_committing(
    engine: LocalEngine, warehouse: str, fresh: None
) -> None:
    failed_sync(
        engine, state_crash("commit_load", "injected: reply lost", after=True), "InjectedCrash"
    )
    assert {f["status"] for f in files(engine)} == {"loaded"}
    assert lock(engine) is None
    recover_and_record(engine, warehouse, "commit load", "crash, after", "FAILED, all committed")


# --- release lock -----------------------------------------------------------------------


def test_lock_release_fails_and_the_failure_handler_releases_it(
    engine: LocalEngine, warehouse: str, fresh: None
) -> None:
    failed_sync(engine, state_crash("release_lock", "injected: release lost"), "InjectedCrash")
    assert lock(engine) is None  # RecordFailure released it
    assert compare(engine, warehouse).equal  # the data was committed before
    recover_and_record(
        engine, warehouse, "release lock", "crash, before", "FAILED, data in, lock freed"
    )


def test_lock_release_failure_does_not_mark_a_committed_load_failed(
    engine: LocalEngine, warehouse: str, fresh: None
) -> None:
    failed_sync(
        engine,
        state_crash("release_lock", "injected: release lost"),
        "InjectedCrash",
        fired=None,
    )
    assert {f["status"] for f in files(engine)} == {"loaded"}
    assert compare(engine, warehouse).equal
    # commit_load set the Redshift side to success for this run; a later failure to
    # release the lock must not turn it into a failed load.
    assert watermark(engine)["redshift_status"] == "success"


def test_lock_release_and_failure_handler_both_fail_the_lease_frees_the_table(
    engine: LocalEngine, warehouse: str, fresh: None
) -> None:
    engine.inject_fault(state_crash("release_lock", "injected: release lost"))
    engine.inject_fault(state_crash("record_failure", "injected: state store gone"))
    failed = sync(engine)
    assert failed["status"] == "FAILED"
    held = lock(engine)
    assert held is not None and held["owner"] == run_id_of(failed)
    engine.clear_faults()
    # Until the lease runs out the table is the failed run's: later runs skip it (that
    # run's failure raised the alarm already).
    blocked = sync(engine)
    assert blocked["status"] == "SUCCEEDED", blocked.get("cause")
    assert json.loads(blocked["output"])["status"] == "skipped"
    assert lock(engine)["owner"] == run_id_of(failed)  # the locked-out run left it alone
    # The lease runs out (simulated: the lock's expiry moved into the past).
    table = engine.client_table()
    table.update_item(
        Key={"pk": state.partition_key(PIPELINE, TABLE), "sk": state.LOCK},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": int(time.time()) - 1},
    )
    recover_and_record(
        engine,
        warehouse,
        "release lock + record failure",
        "crash, both",
        "FAILED, lock held until lease",
    )


# --- killed mid-run ---------------------------------------------------------------------


def test_process_killed_during_extraction_leaves_a_stale_lock_and_written_files(
    engine: LocalEngine, warehouse: str, fresh: None
) -> None:
    table = engine.client_table()
    dead = "dead-run-extracting"
    now = int(time.time())
    state.acquire_lock(table, PIPELINE, TABLE, dead, now - 7200, 3600)  # expired an hour ago
    s3 = engine.client("s3")
    written = []
    for index in range(2):
        key = chunk_object_key("data", PIPELINE, TABLE, dead, index)
        body = b"half-written garbage, never a Parquet file"
        s3.put_object(Bucket=engine.bucket, Key=key, Body=body)
        written.append(
            {
                "sk": state.file_sort_key(dead, index),
                "s3_key": key,
                "rows": 150,
                "bytes": len(body),
                "run_id": dead,
                "chunk": index,
                "status": "written",
                "extracted_at": state.utc_now(),
                "max_cursor": None,
                "report": {},
            }
        )
    state.put_files(table, PIPELINE, TABLE, written)
    recovered = sync(engine)
    assert recovered["status"] == "SUCCEEDED", recovered.get("cause")
    assert lock(engine) is None
    assert {f["status"] for f in files(engine, dead)} == {"written"}  # never loaded
    check_and_record(
        engine,
        warehouse,
        "killed mid-extraction",
        "stale lock + written files",
        "(process gone)",
        "next run takes the expired lock",
    )


def test_process_killed_before_the_load_leaves_pending_files_that_the_next_run_loads(
    engine: LocalEngine, warehouse: str, fresh: None
) -> None:
    backup = sync(engine, mode="backup_only")  # everything up to commit extraction
    assert backup["status"] == "SUCCEEDED", backup.get("cause")
    table = engine.client_table()
    state.acquire_lock(table, PIPELINE, TABLE, "dead-run-loading", int(time.time()) - 7200, 3600)
    change_source()
    recovered = sync(engine)
    assert recovered["status"] == "SUCCEEDED", recovered.get("cause")
    assert lock(engine) is None
    assert {f["status"] for f in files(engine)} == {"loaded"}
    check_and_record(
        engine,
        warehouse,
        "killed before load",
        "stale lock + extracted files",
        "(process gone)",
        "next run loads the pending files",
    )
