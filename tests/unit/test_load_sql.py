"""The load batch: order, quoting, the count check, keeping the newest version."""

from __future__ import annotations

from typing import Any

import pytest
from myshift import load, steps
from myshift.errors import CountMismatchError, LoadError
from myshift.load import TargetTable

TARGET = TargetTable(
    schema="dw",
    name="orders",
    columns_ddl='"id" BIGINT NOT NULL, "order" VARCHAR(40), "updated_at" TIMESTAMP',
    column_names=["id", "order", "updated_at"],
    primary_key=["id"],
    cursor="updated_at",
)


def statements(**options: Any) -> list[str]:
    """The SQL of one merge load of TARGET (`options`: write_mode, add_columns, ...)."""
    return load.load_statements(
        TARGET,
        manifest_url="s3://bucket/m'x.json",
        copy_role_arn=None,
        expected_rows=42,
        run_id="run-1",
        source_table="shop.orders",
        file_count=3,
        **options,
    )


def test_statement_positions() -> None:
    sqls = statements()
    assert sqls[load.COPY_STATEMENT].startswith('COPY "myshift_stage" FROM')
    assert "MANIFEST" in sqls[load.COPY_STATEMENT]
    assert sqls[load.DELETE_STATEMENT].startswith('DELETE FROM "dw"."orders"')
    assert sqls[load.INSERT_STATEMENT].startswith('INSERT INTO "dw"."orders"')
    assert len(sqls) <= 40


def test_literals_and_identifiers_quoted() -> None:
    sqls = statements()
    assert "'s3://bucket/m''x.json'" in sqls[load.COPY_STATEMENT]
    assert "IAM_ROLE default" in sqls[load.COPY_STATEMENT]
    assert '"order"' in sqls[load.INSERT_STATEMENT]


def test_count_check_is_not_constant() -> None:
    check = statements()[load.COPY_STATEMENT + 1]
    assert "COUNT(*) = 42" in check and "CAST(" in check


def test_newest_version_kept() -> None:
    insert = statements()[load.INSERT_STATEMENT]
    assert 'PARTITION BY "id" ORDER BY "updated_at" DESC' in insert
    assert "myshift_rn = 1" in insert


def test_manifest_has_content_length() -> None:
    body = load.manifest("b", [{"s3_key": "k/1.parquet", "bytes": 10}])
    assert body == {
        "entries": [
            {"url": "s3://b/k/1.parquet", "mandatory": True, "meta": {"content_length": 10}}
        ]
    }


def _description(status: str, staged: int) -> dict:
    subs = [{"Status": "FINISHED", "ResultRows": 0} for _ in range(9)]
    subs[load.COPY_STATEMENT]["ResultRows"] = staged
    subs[load.DELETE_STATEMENT]["ResultRows"] = 2
    subs[load.INSERT_STATEMENT]["ResultRows"] = staged
    return {"Status": status, "SubStatements": subs}


def test_verified_counts() -> None:
    counts = load.verified_counts(_description("FINISHED", 42), 42)
    assert (counts.rows_staged, counts.rows_replaced, counts.rows_inserted) == (42, 2, 42)


def test_verified_counts_mismatch() -> None:
    try:
        load.verified_counts(_description("FINISHED", 41), 42)
    except CountMismatchError as error:
        assert "41" in str(error) and "42" in str(error)
    else:
        raise AssertionError("a count mismatch must fail")


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
        assert 'ORDER BY "updated_at" DESC NULLS LAST)' in sqls[load.INSERT_STATEMENT]
        assert "myshift_rn = 1" in sqls[load.INSERT_STATEMENT]  # one version per key
        assert "FILLRECORD" not in sqls[load.COPY_STATEMENT]  # every file has every column


def test_files_without_the_added_columns_load_and_lose_ties() -> None:
    adds = [
        'ALTER TABLE "dw"."orders" ADD COLUMN "region" VARCHAR(32)',
        'ALTER TABLE "dw"."orders" ADD COLUMN "x""y" BIGINT',
    ]
    sqls = statements(add_columns=adds)
    assert sqls[:2] == adds
    assert sqls[load.COPY_STATEMENT].endswith("FORMAT AS PARQUET MANIFEST FILLRECORD")
    assert (
        'ORDER BY "updated_at" DESC NULLS LAST, CASE WHEN "region" IS NULL THEN 1 ELSE 0 END'
        ' + CASE WHEN "x""y" IS NULL THEN 1 ELSE 0 END)'
    ) in sqls[load.INSERT_STATEMENT]


def test_added_column_names_refuses_other_statements() -> None:
    with pytest.raises(LoadError, match="not an ADD COLUMN"):
        load.added_column_names(['ALTER TABLE "t" ALTER COLUMN "a" TYPE VARCHAR(9)'])


def test_files_of_an_older_layout_fill_the_columns_they_lack() -> None:
    """No ADD COLUMN in this load (the table is created with the new layout), but some
    staged files were written before `region` existed."""
    sqls = statements(filled_columns=["region"])
    assert sqls[load.COPY_STATEMENT].endswith("FORMAT AS PARQUET MANIFEST FILLRECORD")
    order = 'ORDER BY "updated_at" DESC NULLS LAST, CASE WHEN "region" IS NULL THEN 1 ELSE 0 END)'
    assert order in sqls[load.INSERT_STATEMENT]


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
    assert "GETDATE()" in first[load.LEDGER_STATEMENT]  # the warehouse's commit time
