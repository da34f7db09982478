"""The load batch: order, quoting, the count check, keeping the newest version."""

from __future__ import annotations

from typing import Any

import pytest
from myshift import load, steps
from myshift.errors import CountMismatchError, LoadError

from tests.support.load_target import TARGET


def statements(**options: Any) -> dict[str, str]:
    """The SQL of one merge load of TARGET by statement name (`options`: write_mode...)."""
    batch = batch_of(**options)
    return {s.name: s.sql for s in batch}


def batch_of(**options: Any) -> list[load.Statement]:
    return load.load_batch(
        TARGET,
        manifest_url="s3://bucket/m'x.json",
        copy_role_arn=None,
        expected_rows=42,
        load_key=load.load_id(["data/a.parquet", "data/b.parquet"]),
        run_id="run-1",
        file_count=3,
        **options,
    )


def test_the_batch_is_named_and_in_order() -> None:
    names = [s.name for s in batch_of()]
    assert names == [
        "create_table",
        "create_ledger",
        "stage",
        "copy",
        "check",
        "delete",
        "insert",
        "ledger",
    ]
    assert len(names) == load.FIXED_LOAD_STATEMENTS
    assert [s.name for s in batch_of(write_mode="append")] == [n for n in names if n != "delete"]
    sqls = statements()
    assert sqls["copy"].startswith('COPY "myshift_stage" FROM') and "MANIFEST" in sqls["copy"]
    assert sqls["delete"].startswith('DELETE FROM "dw"."orders"')
    assert sqls["insert"].startswith('INSERT INTO "dw"."orders"')


def test_no_primary_key_is_declared() -> None:
    # Redshift does not enforce it, and refuses to widen a declared key column.
    create = statements()["create_table"]
    assert "PRIMARY KEY" not in create and create.endswith(f"({TARGET.columns_ddl})")


def test_each_table_has_its_own_ledger_keyed_by_the_files_loaded() -> None:
    sqls = statements()
    key = load.load_id(["data/b.parquet", "data/a.parquet"])  # the set, in any order
    assert key == load.load_id(["data/a.parquet", "data/b.parquet"])
    assert key != load.load_id(["data/a.parquet"])
    assert '"dw"."myshift_ledger_orders"' in sqls["create_ledger"]
    for name in ("delete", "insert", "ledger"):  # nothing changes twice for the same files
        assert f"WHERE load_id = '{key}')" in sqls[name]
    assert load.ledger_name("a" * 60).startswith("myshift_ledger_")
    assert len(load.ledger_name("a" * 60).encode()) <= load.LEDGER_NAME_BYTES
    assert load.ledger_name("a" * 60) != load.ledger_name("a" * 59 + "b")


def test_literals_and_identifiers_quoted() -> None:
    sqls = statements()
    assert "'s3://bucket/m''x.json'" in sqls["copy"]
    assert "IAM_ROLE default" in sqls["copy"]
    assert '"order"' in sqls["insert"]


def test_count_check_is_not_constant() -> None:
    check = statements()["check"]
    assert "COUNT(*) = 42" in check and "CAST(" in check


def test_newest_version_kept() -> None:
    insert = statements()["insert"]
    assert 'PARTITION BY "id" ORDER BY "updated_at" DESC' in insert
    assert "myshift_rn = 1" in insert


def test_manifest_has_content_length() -> None:
    body = load.manifest("b", [{"s3_key": "k/1.parquet", "bytes": 10}])
    assert body == {
        "entries": [
            {"url": "s3://b/k/1.parquet", "mandatory": True, "meta": {"content_length": 10}}
        ]
    }


NAMES = [s.name for s in batch_of(add_columns=[{"target": "x", "ddl": '"x" BIGINT'}])]


def _description(status: str, staged: int) -> dict:
    rows = {"copy": staged, "delete": 2, "insert": staged, "ledger": 1}
    subs = [{"Status": "FINISHED", "ResultRows": rows.get(name, 0)} for name in NAMES]
    return {"Status": status, "SubStatements": subs}


def test_verified_counts_are_read_by_name() -> None:
    counts = load.verified_counts(_description("FINISHED", 42), 42, NAMES)
    assert (counts.rows_staged, counts.rows_replaced, counts.rows_inserted) == (42, 2, 42)
    assert counts.already_loaded is False


def test_verified_counts_mismatch() -> None:
    with pytest.raises(CountMismatchError, match=r"staged 41 rows but 42"):
        load.verified_counts(_description("FINISHED", 41), 42, NAMES)
    with pytest.raises(LoadError, match="sub-statements"):  # not the batch submitted
        load.verified_counts(_description("FINISHED", 42), 42, NAMES[1:])


def test_failure_text_from_sub_statement() -> None:
    description = {
        "Status": "FAILED",
        "Error": "top",
        "SubStatements": [
            {"Status": "FINISHED"},
            {
                "Status": "FAILED",
                "Error": "String length exceeds DDL length",
                "QueryString": "COPY",
            },
        ],
    }
    error = load.failure_of(description)
    assert isinstance(error, LoadError)
    assert "String length exceeds DDL length" in str(error)


def test_a_null_cursor_never_wins_over_a_version_with_one() -> None:
    for mode in ("merge", "replace"):
        sqls = statements(write_mode=mode)
        assert 'ORDER BY "updated_at" DESC NULLS LAST)' in sqls["insert"]
        assert "myshift_rn = 1" in sqls["insert"]  # one version per key
        assert "FILLRECORD" not in sqls["copy"]  # every file has every column


def test_files_without_the_added_columns_load_and_lose_ties() -> None:
    adds = [
        {"target": "region", "ddl": '"region" VARCHAR(32)'},
        {"target": 'x"y', "ddl": '"x""y" BIGINT'},
    ]
    batch = batch_of(add_columns=adds)
    assert [(s.name, s.sql) for s in batch[:2]] == [
        ("add region", 'ALTER TABLE "dw"."orders" ADD COLUMN "region" VARCHAR(32)'),
        ('add x"y', 'ALTER TABLE "dw"."orders" ADD COLUMN "x""y" BIGINT'),
    ]
    sqls = {s.name: s.sql for s in batch}
    assert sqls["copy"].endswith("FORMAT AS PARQUET MANIFEST FILLRECORD")
    assert (
        'ORDER BY "updated_at" DESC NULLS LAST, CASE WHEN "region" IS NULL THEN 1 ELSE 0 END'
        ' + CASE WHEN "x""y" IS NULL THEN 1 ELSE 0 END)'
    ) in sqls["insert"]


def test_more_new_columns_than_a_batch_holds_are_refused_in_the_load() -> None:
    # The Data API takes 40 statements a batch: the rest are added before the load.
    fits = [{"target": f"c{i}", "ddl": f'"c{i}" BIGINT'} for i in range(32)]
    assert len(batch_of(add_columns=fits)) == load.MAX_BATCH_STATEMENTS
    with pytest.raises(LoadError, match="do not fit one load batch"):
        batch_of(add_columns=[*fits, {"target": "c32", "ddl": '"c32" BIGINT'}])


def test_files_of_an_older_layout_fill_the_columns_they_lack() -> None:
    """No ADD COLUMN in this load (the table is created with the new layout), but some
    staged files were written before `region` existed."""
    sqls = statements(filled_columns=["region"])
    assert sqls["copy"].endswith("FORMAT AS PARQUET MANIFEST FILLRECORD")
    order = 'ORDER BY "updated_at" DESC NULLS LAST, CASE WHEN "region" IS NULL THEN 1 ELSE 0 END)'
    assert order in sqls["insert"]


def test_filled_columns_are_the_layout_past_the_narrowest_file() -> None:
    layout = [{"target": name} for name in ("id", "updated_at", "amount", "region", "zone")]
    files = [{"columns": 5}, {"columns": 3}, {}]  # {}: recorded before files had a count
    assert steps.filled_columns(layout, files) == ["region", "zone"]
    assert steps.filled_columns(layout, [{"columns": 5}, {}]) == []
    assert steps.filled_columns(layout, []) == []


def test_client_token_is_the_submission_hashed_within_the_api_limit() -> None:
    token = load.client_token("myshift-r1", ["SELECT 1", "SELECT 2"])
    assert token == load.client_token("myshift-r1", ["SELECT 1", "SELECT 2"])
    assert 1 <= len(token) <= 64
    assert token != load.client_token("myshift-r2", ["SELECT 1", "SELECT 2"])
    assert token != load.client_token("myshift-r1", ["SELECT 1", "SELECT 3"])
    # Two different batches never share the text that is hashed.
    assert load.client_token("a", ["b\nc"]) != load.client_token("a", ["b", "c"])


def test_the_same_load_is_the_same_sql_so_a_retried_submit_is_one_statement() -> None:
    """The idempotency token hashes the SQL: nothing in it may depend on the clock."""
    first = statements()
    assert statements() == first
    assert "GETDATE()" in first["ledger"]  # the warehouse's commit time
