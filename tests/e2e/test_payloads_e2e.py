"""Every payload a sync run passes between its states fits its model (myshift.payloads).

Runs the real state machine through its paths (inline and distributed chunks, nothing
new, deleted rows removed, backup_only, redshift_only, a table another run holds),
records each Lambda invocation's event and answer, and checks each against its model:
parsed and dumped again, it is the payload it was. Prints the largest payload per task
against Step Functions' 256 KiB. `MYSHIFT_WRITE_PAYLOAD_SAMPLES=1` writes the smallest
sample of each task to tests/unit/data/payloads.json (the unit tests' round trips).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
from myshift import state
from myshift.local import engine as local_engine
from myshift.local import limits, sample
from myshift.local.engine import LocalEngine

from tests.conftest import MYSQL
from tests.e2e.conftest import DATABASE, pipeline_yaml, run
from tests.support.payloads import TASKS, Invocation, round_trips

PIPELINE = "e2e_payloads"
SCHEMA = "payloads_dw"
TABLE = "payloads_a"
# New rows: after the seeded ones' cursor, before the run's frozen bound (the source's NOW()).
RECENT = dt.datetime.now() - dt.timedelta(hours=1)
SAMPLES = Path(__file__).parents[1] / "unit" / "data" / "payloads.json"


@pytest.fixture(scope="module")
def payloads_pipeline(pipelines_dir: Path) -> None:
    (pipelines_dir / f"{PIPELINE}.yml").write_text(
        pipeline_yaml(
            PIPELINE,
            [f"{DATABASE}.{TABLE}"],
            schema=SCHEMA,
            table_options="deletes: remove, verify_range_rows: 10",
        )
    )
    conn = pymysql.connect(**MYSQL, password="", autocommit=True)
    sample.seed(conn, DATABASE, TABLE, 30)
    conn.close()


@pytest.fixture()
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Invocation]]:
    """Every sync handler's invocation that answered (errors are not payloads)."""
    invocations: list[Invocation] = []
    real = local_engine._run_handler

    def recording(handler: str, function_name: str, event: Any, environment: Any) -> Any:
        answer, errored = real(handler, function_name, event, environment)
        function = handler.rsplit(".", 2)[-2]
        if not errored and isinstance(event, dict):
            invocations.append(Invocation(function, event, json.loads(answer)))
        return answer, errored

    monkeypatch.setattr(local_engine, "_run_handler", recording)
    yield invocations


def sync(engine: LocalEngine, **execution_input: Any) -> None:
    description = run(engine, {"pipeline": PIPELINE, **execution_input})
    assert description["status"] == "SUCCEEDED", description.get("cause")


def test_every_payload_of_a_sync_fits_its_model(
    engine: LocalEngine, payloads_pipeline: None, recorded: list[Invocation], mysql: Any
) -> None:
    sync(engine, limit=10)  # three inline chunks, loaded, verified
    with mysql.cursor() as cursor:
        cursor.execute(f"DELETE FROM {DATABASE}.{TABLE} WHERE id IN (3, 4)")
    sync(engine)  # nothing new: the deleted rows found by the verification, removed
    sample.insert_rows(mysql, DATABASE, TABLE, 31, 5, start=RECENT)
    sync(engine, mode="backup_only")
    sync(engine, mode="redshift_only")
    sample.insert_rows(mysql, DATABASE, TABLE, 36, 5, start=RECENT + dt.timedelta(minutes=1))
    lambda_client = engine.client("lambda")
    before = lambda_client.get_function_configuration(FunctionName="myshift-plan")["Environment"]
    lambda_client.update_function_configuration(
        FunctionName="myshift-plan",
        Environment={"Variables": {**before["Variables"], "MYSHIFT_INLINE_MAP_MAX_CHUNKS": "1"}},
    )
    try:
        sync(engine, limit=2)  # three chunks: distributed
    finally:
        lambda_client.update_function_configuration(FunctionName="myshift-plan", Environment=before)
    # Another run holds the table: skipped.
    table = engine.client_table()
    state.acquire_lock(table, PIPELINE, f"{DATABASE}.{TABLE}", "someone-else", 0, 10**10)
    try:
        sync(engine)
    finally:
        state.release_lock(table, PIPELINE, f"{DATABASE}.{TABLE}", "someone-else")

    seen = {invocation.task for invocation in recorded}
    for invocation in recorded:
        round_trips(invocation)
    plans = [i.result for i in recorded if i.task == ("plan", None)]
    assert any(p.get("distributed") and p["chunk_count"] for p in plans), "no distributed plan"
    loads = [i.result for i in recorded if i.task == ("state", "commit_load")]
    assert [load["rows_loaded"] for load in loads] == [30, 5, 5]
    expected = set(TASKS) - {("load", "execute"), ("state", "record_failure")}
    assert expected - seen == set(), "paths not taken"

    largest: dict[str, Invocation] = {}
    for invocation in recorded:
        if invocation.size() > largest.get(invocation.label, invocation).size() or (
            invocation.label not in largest
        ):
            largest[invocation.label] = invocation
    print(f"\nlargest payload per task (limit {limits.MAX_PAYLOAD_BYTES} bytes):")
    for label, invocation in sorted(largest.items(), key=lambda kv: -kv[1].size()):
        share = invocation.size() / limits.MAX_PAYLOAD_BYTES
        print(f"  {label:28} {invocation.size():7,d} bytes  {share:6.2%}")
        assert invocation.size() < limits.MAX_PAYLOAD_BYTES
    if os.environ.get("MYSHIFT_WRITE_PAYLOAD_SAMPLES") == "1":
        write_samples(recorded)


def write_samples(recorded: list[Invocation]) -> None:
    """Each task's distinct shapes (the set of keys of its event's part and answer), the
    smallest payload of each, as the unit tests' samples."""
    samples: dict[tuple[str, str, str], Invocation] = {}
    for invocation in recorded:
        where = TASKS[invocation.task][0]
        part = invocation.event if where is None else invocation.event[where]
        shape = (invocation.label, ",".join(sorted(part)), ",".join(sorted(invocation.result)))
        if shape not in samples or invocation.size() < samples[shape].size():
            samples[shape] = invocation
    rows = [
        {"function": i.function, "event": i.event, "result": i.result}
        for _, i in sorted(samples.items())
    ]
    SAMPLES.write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")
