"""The sync workflow's payload models (myshift.payloads) against the payloads the
workflow really produced (tests/unit/data/payloads.json, written by
tests/e2e/test_payloads_e2e.py with MYSHIFT_WRITE_PAYLOAD_SAMPLES=1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from myshift.errors import InputError
from myshift.local.limits import MAX_PAYLOAD_BYTES
from myshift.payloads import Chunk, FailedTable, Run, Statement, TableItem, TableRun, parse

from tests.support.payloads import TASKS, Invocation, round_trips

SAMPLES = [
    Invocation(row["function"], row["event"], row["result"])
    for row in json.loads((Path(__file__).parent / "data" / "payloads.json").read_text())
]

ITEM = {
    "pipeline": "shop",
    "table": "db.orders",
    "run_id": "run-1",
    "mode": "full",
    "limit": 10,
    "max_chunks": None,
    "poll_seconds": 1,
}
LOCKED = {
    **ITEM,
    "max_concurrent_chunks": 2,
    "strategy": "sequential",
    "write_mode": "merge",
    "lock_lease_seconds": 60,
}


def statement(statement_id: str | None = "s-1") -> dict[str, Any]:
    return {
        "statement_id": statement_id,
        "expected_rows": None,
        "manifest_key": None,
        "attempt": None,
        "names": None,
        "status": "SUBMITTED",
        "counts": None,
        "polls": 0,
        "poll_seconds": 1,
        "wait_seconds": 1,
    }


def test_the_samples_cover_every_sync_task() -> None:
    assert set(TASKS) - {i.task for i in SAMPLES} <= {
        ("load", "execute"),
        ("state", "record_failure"),
    }


@pytest.mark.parametrize("invocation", SAMPLES, ids=[i.label for i in SAMPLES])
def test_a_sample_round_trips_through_its_models(invocation: Invocation) -> None:
    round_trips(invocation)
    assert invocation.size() < MAX_PAYLOAD_BYTES


@pytest.mark.parametrize(
    ("model", "raw", "message"),
    [
        (TableRun, {**LOCKED, "chunkz": []}, "Plan event chunkz: Extra inputs are not permitted"),
        (TableItem, {**ITEM, "run_id": None}, "Plan event run_id: Input should be a valid string"),
        (
            TableRun,
            {k: v for k, v in LOCKED.items() if k != "write_mode"},
            "Plan event write_mode: Field required",
        ),
        (
            TableRun,
            {**LOCKED, "load": {**statement(), "polls": "many"}},
            "Plan event load.polls: Input should be a valid integer",
        ),
        (TableItem, ["not", "an", "object"], "Plan event: Input should be a valid dictionary"),
    ],
)
def test_a_wrong_payload_is_one_line_naming_the_field(
    model: type[TableItem], raw: Any, message: str
) -> None:
    with pytest.raises(InputError) as caught:
        parse(model, raw, "Plan event")
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_presence_is_kept_nulls_included() -> None:
    """A null the ASL reads stays (max_chunks); a field never set stays out (skipped:
    LockTaken tests its presence)."""
    item = TableRun.model_validate(LOCKED)
    assert item.dump() == LOCKED
    assert "skipped" not in item.dump() and item.dump()["max_chunks"] is None
    skipped = item.after("acquire_lock", skipped="locked by run r-0")
    assert skipped.dump() == {**LOCKED, "skipped": "locked by run r-0"}


def test_each_state_passes_on_what_the_next_ones_read() -> None:
    planned = TableRun.model_validate(
        {**LOCKED, "chunk_count": 1, "chunks": [Chunk(index=0, lower=None, upper=[1]).dump()]}
    )
    extracted = planned.after("commit_extraction", rows_extracted=1)
    assert "chunks" not in extracted.dump() and extracted.rows_extracted == 1
    loading = extracted.after("load", load=statement(), alters={"statements": []})
    assert "load" not in loading.after("commit_load").dump()
    assert "alters" not in loading.after("commit_alters").dump()
    verifying = extracted.after(
        "verify",
        verification={"verify": True},
        verify_statement=statement(),
        keys_statement=statement(None),
        verified={"deletes": 2},
        deletes_statement=statement(),
    )
    done = verifying.after("commit_deletes").dump()
    assert not [k for k in done if k.endswith("_statement")]
    assert done["verified"] == {"deletes": 2} and done["verification"] == {"verify": True}


def test_a_failed_table_carries_its_catch() -> None:
    failed = parse(FailedTable, {**ITEM, "error": {"Error": "LoadError", "Cause": "boom"}})
    assert failed.error.Error == "LoadError"
    with pytest.raises(InputError, match=r"^FailedTable error: Field required"):
        parse(FailedTable, ITEM)


def test_a_run_lists_table_names_and_its_preparation() -> None:
    run = {
        "pipeline": "shop",
        "run_id": "run-1",
        "mode": "full",
        "limit": 10,
        "max_chunks": None,
        "poll_seconds": 1,
        "max_concurrent_tables": 1,
        "tables": ["db.orders"],
    }
    assert Run.model_validate(run).dump() == run
    prepared = {**run, "prepare": statement()}
    assert Run.model_validate(prepared).dump() == prepared
    assert Statement.model_validate(statement()).dump() == statement()
