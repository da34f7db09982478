"""Schema evolution decisions: what Redshift can follow, and clear errors otherwise."""

from __future__ import annotations

import pyarrow as pa
import pytest
from myshift.errors import SchemaError
from myshift.evolve import pending_changes, reads_from_start, reconcile, table_ddl
from myshift.schema import columns_from_information_schema


def col(
    name: str, data_type: str, column_type: str, nullable: bool = True, **extra: object
) -> dict:
    row = {
        "COLUMN_NAME": name,
        "DATA_TYPE": data_type,
        "COLUMN_TYPE": column_type,
        "IS_NULLABLE": "YES" if nullable else "NO",
        "CHARACTER_SET_NAME": "utf8mb4" if data_type in ("varchar", "char") else None,
    }
    row.update(extra)
    return row


def columns(*rows: dict):
    return columns_from_information_schema(list(rows))


ID = col("id", "bigint", "bigint(20)", nullable=False, NUMERIC_PRECISION=19, NUMERIC_SCALE=0)


def varchar(name: str, length: int) -> dict:
    return col(name, "varchar", f"varchar({length})", CHARACTER_MAXIMUM_LENGTH=length)


def decimal(name: str, precision: int, scale: int) -> dict:
    return col(
        name,
        "decimal",
        f"decimal({precision},{scale})",
        NUMERIC_PRECISION=precision,
        NUMERIC_SCALE=scale,
    )


def stored(cols) -> list[dict]:
    return reconcile("t", None, cols).stored_columns()


def test_first_load_takes_the_current_columns() -> None:
    current = columns(ID, varchar("name", 10))
    evolution = reconcile("t", None, current)
    assert evolution.columns == current and not evolution.changed


def test_added_column_is_appended_whatever_its_mysql_position() -> None:
    before = stored(columns(ID, varchar("name", 10)))
    now = columns(ID, decimal("amount", 15, 4), varchar("name", 10))
    evolution = reconcile("t", before, now)
    assert [c.source_name for c in evolution.columns] == ["id", "name", "amount"]
    assert [c.source_name for c in evolution.added] == ["amount"]
    adds, widens = pending_changes(evolution.stored_columns(), before)
    assert [c["ddl"] for c in adds] == ['"amount" DECIMAL(15,4)'] and widens == []


def test_wider_varchar_is_widened_narrower_kept() -> None:
    before = stored(columns(ID, varchar("a", 10), varchar("b", 10)))
    evolution = reconcile("t", before, columns(ID, varchar("a", 20), varchar("b", 5)))
    adds, widens = pending_changes(evolution.stored_columns(), before)
    assert adds == [] and [(c["target"], c["redshift_type"]) for c in widens] == [
        ("a", "VARCHAR(80)")
    ]
    b = evolution.columns[2]
    assert b.redshift_type == "VARCHAR(40)" and b.max_bytes == 40


def test_narrower_decimal_is_written_as_the_target_type() -> None:
    before = stored(columns(ID, decimal("amount", 15, 4)))
    evolution = reconcile("t", before, columns(ID, decimal("amount", 12, 4)))
    assert evolution.columns[1].arrow_type == pa.decimal128(15, 4)
    assert not evolution.changed


@pytest.mark.parametrize(
    ("after", "message"),
    [
        (decimal("amount", 18, 4), "gained precision"),
        (decimal("amount", 15, 2), "changed type"),
        (varchar("amount", 20), "changed type"),
    ],
)
def test_changes_redshift_cannot_follow(after: dict, message: str) -> None:
    before = stored(columns(ID, decimal("amount", 15, 4)))
    with pytest.raises(SchemaError) as error:
        reconcile("db.t", before, columns(ID, after))
    assert message in str(error.value) and "'amount'" in str(error.value)


def test_dropped_column_fails_with_what_to_do() -> None:
    before = stored(columns(ID, varchar("name", 10)))
    with pytest.raises(SchemaError, match="'name' was dropped in MySQL"):
        reconcile("db.t", before, columns(ID))


def test_column_that_became_nullable_fails() -> None:
    before = stored(columns(ID, col("qty", "int", "int(11)", nullable=False)))
    with pytest.raises(SchemaError, match="became nullable"):
        reconcile("db.t", before, columns(ID, col("qty", "int", "int(11)", nullable=True)))


def test_table_ddl_and_no_ddl_before_the_table_exists() -> None:
    layout = stored(columns(ID, varchar("name", 10)))
    assert table_ddl(layout) == '"id" BIGINT NOT NULL, "name" VARCHAR(40)'
    assert pending_changes(layout, None) == ([], [])


@pytest.mark.parametrize(
    ("write_mode", "with_new_column", "expected"),
    [
        ("replace", False, True),  # a full refresh always reads every row
        ("replace", True, True),
        ("merge", True, True),  # once, so every row gets the new column's value
        ("merge", False, False),
        ("append", True, False),  # re-reading would append every row a second time
        ("append", False, False),
    ],
)
def test_which_runs_read_the_whole_table(
    write_mode: str, with_new_column: bool, expected: bool
) -> None:
    before = stored(columns(ID, varchar("a", 10)))
    now = [ID, varchar("a", 10), *([varchar("b", 5)] if with_new_column else [])]
    evolution = reconcile("t", before, columns(*now))
    assert evolution.added_names == (["b"] if with_new_column else [])
    assert reads_from_start(write_mode, evolution) is expected
    # Without the backfill only a full refresh reads everything.
    assert reads_from_start(write_mode, evolution, backfill=False) is (write_mode == "replace")
