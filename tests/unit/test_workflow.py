"""Execution input validation and the per-table items of a run."""

from __future__ import annotations

from pathlib import Path

import pytest
from myshift.config import load_pipeline_file
from myshift.errors import ConfigError, InputError
from myshift.workflow import parse_execution_input, run_items, table_item

from tests.support.pipelines import GOOD


@pytest.fixture()
def pipeline(tmp_path: Path):
    path = tmp_path / "good.yml"
    path.write_text(GOOD + "  - {name: shop.items, cursor: changed, primary_key: [id, line]}\n")
    return load_pipeline_file(path)


def test_defaults_expand_to_all_tables(pipeline) -> None:
    plan = run_items(parse_execution_input({"pipeline": "good"}), pipeline, "run-1", 5)
    assert plan.tables == ["shop.orders", "shop.items"]  # names only: a small payload
    # No limit and no chunk_rows: the plan sizes the chunks from the table.
    assert plan.limit is None and plan.max_chunks is None
    assert plan.max_concurrent_tables == 1


def test_a_table_item_is_completed_from_the_pipeline_file(pipeline) -> None:
    item = table_item(pipeline, {"pipeline": "good", "table": "shop.items", "run_id": "r"})
    assert item["write_mode"] == "merge" and item["strategy"] == "sequential"
    assert item["max_concurrent_chunks"] == pipeline.max_concurrent_chunks
    assert item["lock_lease_seconds"] == pipeline.lock_lease_seconds
    with pytest.raises(ConfigError):
        table_item(pipeline, {"pipeline": "good", "table": "shop.nothing", "run_id": "r"})


@pytest.mark.parametrize(
    "raw",
    [
        None,
        [],
        {},
        {"pipeline": ""},
        {"pipeline": "good", "limit": 0},
        {"pipeline": "good", "limit": -5},
        {"pipeline": "good", "limit": "100"},
        {"pipeline": "good", "limit": 1.5},
        {"pipeline": "good", "max_chunks": 0},
        {"pipeline": "good", "mode": "both"},
        {"pipeline": "good", "extra": True},
        {"pipeline": "good", "tables": "shop.orders"},
    ],
)
def test_bad_input(raw: object) -> None:
    with pytest.raises(InputError) as error:
        parse_execution_input(raw)
    assert "\n" not in str(error.value)


def test_unknown_table_and_duplicates(pipeline) -> None:
    with pytest.raises(ConfigError):
        run_items(parse_execution_input({"pipeline": "good", "tables": ["a.b"]}), pipeline, "r", 5)
    with pytest.raises(InputError, match="listed twice"):
        parse_execution_input({"pipeline": "good", "tables": ["shop.orders", "shop.orders"]})


def test_run_id_must_be_safe(pipeline) -> None:
    with pytest.raises(InputError, match="execution name"):
        run_items(parse_execution_input({"pipeline": "good"}), pipeline, "a/b", 5)


REPLACED = "  - {name: shop.snapshot, cursor: changed, primary_key: [id], write_mode: replace}\n"


@pytest.fixture()
def with_replace(tmp_path: Path):
    path = tmp_path / "good.yml"
    path.write_text(GOOD + REPLACED)
    return load_pipeline_file(path)


@pytest.mark.parametrize("tables", [None, ["shop.snapshot"], ["shop.orders", "shop.snapshot"]])
def test_max_chunks_is_refused_when_a_replace_table_runs(with_replace, tables) -> None:
    request = parse_execution_input({"pipeline": "good", "tables": tables, "max_chunks": 3})
    with pytest.raises(InputError) as error:
        run_items(request, with_replace, "run-1", 5)
    message = str(error.value)
    assert "max_chunks cannot be used with write_mode replace tables (shop.snapshot)" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "raw",
    [
        {"pipeline": "good", "tables": ["shop.orders"], "max_chunks": 3},  # merge table only
        {"pipeline": "good", "limit": 10},  # limit only sizes the chunks
        {"pipeline": "good", "max_chunks": 3, "mode": "redshift_only"},  # plans nothing
    ],
)
def test_what_a_replace_table_allows(with_replace, raw: dict) -> None:
    plan = run_items(parse_execution_input(raw), with_replace, "run-1", 5)
    modes = {name: table_item(with_replace, {"table": name})["write_mode"] for name in plan.tables}
    assert modes.get("shop.snapshot", "replace") == "replace"
