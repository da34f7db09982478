"""The reconciliation's pure parts: input, comparison of ranges, naming of rows, the fix's
chunks, the outcome, the workflow's shape (no I/O)."""

from __future__ import annotations

import json

import pytest
from myshift import checksum, keys, reconcile
from myshift.errors import InputError, SchemaError
from myshift.extract import chunk_query

from infra.definition import reconcile_definition


def test_input_is_validated() -> None:
    request = reconcile.parse_input({"pipeline": "p", "tables": ["a.b"], "fix": True})
    assert request.fix and request.tables == ["a.b"]
    assert not reconcile.parse_input({"pipeline": "p"}).fix
    for bad, field in (
        ([], "object"),
        ({"pipeline": "p", "fixed": True}, "fixed"),
        ({"pipeline": "p", "fix": "yes"}, "fix"),
        ({"pipeline": "p", "tables": ["a.b", "a.b"]}, "twice"),
        ({"pipeline": ""}, "pipeline"),
    ):
        with pytest.raises(InputError, match=field):
            reconcile.parse_input(bad)


def _level(ranges: int, source: dict[str, list[int]]) -> dict:
    return {
        "ranges": [[[i * 10] if i else None, [(i + 1) * 10]] for i in range(ranges)],
        "source": source,
        "target_offsets": [0],
    }


def test_agreeing_ranges_are_reconciled_the_others_split_or_listed() -> None:
    document = _level(4, {"0": [10, 55, 0], "1": [500, 99, 3], "2": [20, 7, 1], "3": [9, 1, 0]})
    # Range 0 agrees; 1 differs and is large; 2 differs and is small; 3 is absent in the
    # warehouse (no result row: count 0, sum 0).
    results = [[[0, 10, 55], [1, 500, 98], [2, 21, 7]]]
    compared = reconcile.compare_level(document, results, level=0)
    assert compared["verified"] == 10 and compared["newer"] == 0
    assert compared["split"] == [[[10], [20], 503]]
    assert compared["leaves"] == [[[20], [30]], [[30], [40]]]
    # At the last level a large range is listed, not split again.
    last = reconcile.compare_level(document, results, level=reconcile.MAX_LEVELS - 1)
    assert not last["split"] and len(last["leaves"]) == 3


def test_carried_counts_and_leaves_add_up() -> None:
    document = {**_level(1, {"0": [3, 9, 2]}), "verified": 100, "newer": 5, "leaves": [["x"]]}
    compared = reconcile.compare_level(document, [[[0, 3, 9]]], level=1)
    assert compared == {"verified": 103, "newer": 7, "leaves": [["x"]], "split": []}


def test_rows_are_named() -> None:
    source = [
        [1, "1", "aa", 1],  # equal
        [2, "2", "bb", 1],  # differs
        [3, "3", "cc", 1],  # missing in the warehouse
        [4, "4", "dd", 1],  # held twice
        [5, "5", "ee", 0],  # newer than the watermark: any version may be held
        [6, "6", "ff", 0],  # newer, not held
    ]
    target = [
        [1, "1", "aa"],
        [2, "2", "zz"],
        [4, "4", "dd"],
        [4, "4", "dd"],
        [5, "5", "old"],
        [9, "9", "gone"],  # deleted in the source
    ]
    found = reconcile.classify(source, target)
    assert found["verified"] == 1 and found["newer"] == 2
    assert found["differing"] == [[2]]
    assert found["missing"] == [[3]]
    assert found["duplicated"] == [[4]]
    assert found["deleted"] == [[9]]


def test_key_texts_from_mysql_bytes_match_the_warehouse_text() -> None:
    found = reconcile.classify([["é", b"2:\xc3\xa9", b"h1", 1]], [["é", "2:é", "h1"]])
    assert found["verified"] == 1 and not found["missing"]


def _result(**named: list) -> dict:
    base = {"verified": 10, "newer": 1, "left": 0, **{k: [] for k in reconcile.KINDS}}
    return {**base, **named}


@pytest.mark.parametrize(
    ("deletes", "status", "to_fix"), [("keep", "equal", 0), ("remove", "differs", 1)]
)
def test_deleted_rows_differ_only_when_the_policy_removes_them(
    deletes: str, status: str, to_fix: int
) -> None:
    found = reconcile.totals([_result(deleted=[[7]]), _result()])
    record = reconcile.record_of(found, deletes=deletes)
    assert record["status"] == status and record["rows_to_fix"] == to_fix
    assert record["verified_rows"] == 20 and record["deleted_in_source"] == 1


def test_the_record_names_the_first_keys_and_counts_all() -> None:
    many = [[i] for i in range(reconcile.NAMED_IN_RECORD + 5)]
    found = reconcile.totals([_result(differing=many), _result(differing=[[0]], left=2)])
    record = reconcile.record_of(found, deletes="keep")
    assert record["differing_rows"] == reconcile.NAMED_IN_RECORD + 5  # [0] once
    assert len(record["named"]["differing"]) == reconcile.NAMED_IN_RECORD
    assert record["ranges_left"] == 2 and record["status"] == "differs"


@pytest.mark.parametrize(
    ("record", "final"),
    [
        ({"status": "differs", "fix": False}, "differs"),
        ({"status": "differs", "fix": True, "rows_fixed": 3}, "fixed"),
        ({"status": "differs", "fix": True, "deletes_applied": 1}, "fixed"),
        ({"status": "differs", "fix": True, "rows_fixed": 3, "ranges_left": 1}, "differs"),
        ({"status": "differs", "fix": True, "rows_fixed": 3, "rows_left_unfixed": 9}, "differs"),
        ({"status": "differs", "fix": True}, "differs"),
        ({"status": "equal", "fix": True}, "equal"),
        ({"status": "skipped"}, "skipped"),
        ({}, "failed"),
    ],
)
def test_outcome(record: dict, final: str) -> None:
    assert reconcile.outcome(record) == final


def test_fix_chunks_hold_the_named_keys() -> None:
    named = [[i] for i in range(reconcile.FIX_KEYS_PER_CHUNK * 2 + 1)]
    chunks = reconcile.fix_chunks(named)
    assert [c["index"] for c in chunks] == [0, 1, 2]
    assert [k for c in chunks for k in c["keys"]] == named
    assert len(json.dumps(chunks[0]).encode()) < 256 * 1024  # one Distributed Map item


def test_rows_read_again_by_primary_key() -> None:
    import pyarrow as pa
    from myshift.schema import Column

    sql, params = keys.any_of(["id"], [[3], [5]])
    assert (sql, params) == ("`id` IN (%s, %s)", [3, 5])
    sql, params = keys.any_of(["a", "b"], [[1, "x"], [2, "y"]])
    assert sql == "((`a` = %s AND `b` = %s) OR (`a` = %s AND `b` = %s))"
    assert params == [1, "x", 2, "y"]
    with pytest.raises(SchemaError):
        keys.any_of(["id"], [])
    with pytest.raises(SchemaError):
        keys.any_of(["a", "b"], [[1]])
    columns = [
        Column("id", "id", "bigint", "bigint", False, pa.int64(), "BIGINT", None),
        Column(
            "updated_at",
            "updated_at",
            "datetime",
            "datetime(6)",
            True,
            pa.timestamp("us"),
            "TIMESTAMP",
            None,
        ),
    ]
    sql, params = chunk_query(
        "db",
        "t",
        columns,
        ["updated_at", "id"],
        None,
        None,
        order_index="idx",
        named=(["id"], [[7], [9]]),
    )
    assert "WHERE `id` IN (%s, %s) ORDER BY `updated_at`, `id`" in sql
    assert "FORCE INDEX" not in sql and params == [7, 9]


def _states(node: object) -> dict[str, dict]:
    found: dict[str, dict] = {}
    if isinstance(node, dict):
        for name, state in (node.get("States") or {}).items():
            found[name] = state
        for value in node.values():
            found.update(_states(value))
    elif isinstance(node, list):
        for value in node:
            found.update(_states(value))
    return found


def test_the_workflow_maps_over_tables_and_ranges_in_child_executions() -> None:
    definition = reconcile_definition()
    states = _states(definition)
    tables = states["ReconcileTables"]
    assert tables["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    items = states["CompareItems"]
    assert items["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert items["ItemReader"]["Parameters"]["Key.$"] == "$.items_key"
    assert "ResultWriter" in items and items["ResultPath"] is None
    # The split loop goes back to the warehouse's checksums; the rows are named after.
    assert states["SplitRanges"]["Next"] == "SubmitChecksums"
    assert {c["Next"] for c in states["RangesDiffer"]["Choices"]} == {"SplitRanges", "ListRows"}
    # The Load function submits and follows every statement.
    for name in ("SubmitChecksums", "FollowChecksums", "FollowListing", "LoadFix"):
        assert states[name]["Parameters"]["FunctionName"] == "${LoadFunctionArn}", name
    # The fix: the sync's Extract, its load, under the table's lock released at the end.
    extract = states["ExtractFixChunks"]
    assert extract["ItemProcessor"]["States"]["ExtractChunkDistributed"]["Parameters"][
        "FunctionName"
    ] == ("${ExtractFunctionArn}")
    assert states["LoadFix"]["Parameters"]["Payload"]["action"] == "submit"
    assert states["ReconcileTable"]["Catch"][0]["Next"] == "RecordReconcileFailure"


@pytest.mark.parametrize(
    ("ranges", "at_once", "sizes"),
    [
        (101, 2, [51, 50]),
        (101, 1, [51, 50]),
        (250, 2, [84, 84, 82]),
        (3, 4, [1, 1, 1]),
        (1, 2, [1]),
        (100, 1, [100]),
    ],
)
def test_items_are_even_and_spread(ranges: int, at_once: int, sizes: list[int]) -> None:
    cut = [checksum.KeyRange([i] if i else None, [i + 1]) for i in range(ranges)]
    items = reconcile.item_ranges(cut, at_once)
    assert [len(i) for i in items] == sizes
    assert [r for item in items for r in item] == cut
