"""The doctor's rows: the canary comparison, the privileges, the report (no I/O)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from myshift import canary, checksum, doctor
from myshift.config import PipelineConfig


def _pipeline(schema: str = "Sales_DW") -> PipelineConfig:
    return PipelineConfig.model_validate(
        {
            "name": "p",
            "source": {"host": "127.0.0.1", "user": "u", "password_env": "X"},
            "target": {"database": "dev", "schema": schema, "workgroup": "wg"},
            "tables": [{"name": "shop.Orders", "cursor": "updated_at", "primary_key": ["id"]}],
        }
    )


def _read_back() -> list[list[Any]]:
    """What a faithful COPY returns: every value's canonical text, row by row."""
    columns, table = canary.canary_table()
    return [
        [
            row[canary.KEY_COLUMN],
            *(checksum.canonical_text(c, row[c.target_name]) for c in columns[1:]),
        ]
        for row in table.to_pylist()
    ]


def test_the_canary_holds_every_mapped_type_at_its_edges_and_a_null_row() -> None:
    columns, table = canary.canary_table()
    assert table.num_rows == canary.EDGE_ROWS + 1
    # Every Redshift type the mapping produces appears (VARCHAR and DECIMAL in variants).
    kinds = {c.redshift_type.split("(")[0] for c in columns}
    assert kinds >= {
        "SMALLINT", "INTEGER", "BIGINT", "DECIMAL", "REAL", "DOUBLE PRECISION", "BOOLEAN",
        "DATE", "TIMESTAMP", "VARCHAR", "VARBYTE",
    }  # fmt: skip
    last = table.slice(canary.EDGE_ROWS).to_pylist()[0]
    assert all(value is None for name, value in last.items() if name != canary.KEY_COLUMN)
    assert pa.types.is_decimal(table.schema.field("c_bigint_u").type)  # 2^64 - 1 exactly


def test_a_faithful_copy_passes() -> None:
    (check,) = doctor.canary_checks(_read_back(), function="Load")
    assert check.status == "pass"
    types = len(canary.canary_types())
    assert check.detail == f"{(canary.EDGE_ROWS + 1) * types} values of {types} types equal"


@pytest.mark.parametrize(
    ("column", "row", "wrong"),
    [
        ("c_timestamp", 1, "2038-01-19 03:14:07.999000"),  # microseconds lost
        ("c_decimal_38", 0, "-10000000000000000000000000000.0000000000"),  # rounded
        ("c_float", 2, "13421773p-27"),  # float32 widened wrongly
        ("c_varchar", 2, "5:emoji"),  # text cut
        ("c_bit64", 1, "N"),  # a value lost
    ],
)
def test_any_value_that_differs_fails_naming_column_and_row(
    column: str, row: int, wrong: str
) -> None:
    records = _read_back()
    columns, _ = canary.canary_table()
    position = [c.target_name for c in columns].index(column)
    records[row][position] = wrong
    (check,) = doctor.canary_checks(records, function="Load")
    assert check.status == "fail"
    assert check.detail.startswith(f"1 values differ: {column} (")
    assert f"row {row + 1}:" in check.detail


def test_a_copy_that_loses_rows_fails() -> None:
    (check,) = doctor.canary_checks(_read_back()[:-1], function="Load")
    assert check.status == "fail" and "3 rows read back, 4 written" in check.detail


def test_the_canary_statements_copy_as_the_load_does() -> None:
    statements = doctor.canary_statements(_pipeline(), "s3://b/data/_doctor/r/m.json")
    assert [s.name for s in statements] == ["create", "copy", "read"]
    create, copy, select = (s.sql for s in statements)
    assert create.startswith(
        'CREATE TEMP TABLE "myshift_doctor_canary" ("myshift_row" INTEGER NOT NULL'
    )
    assert copy == (
        "COPY \"myshift_doctor_canary\" FROM 's3://b/data/_doctor/r/m.json' IAM_ROLE default "
        "FORMAT AS PARQUET MANIFEST"
    )
    assert select.endswith('ORDER BY "myshift_row"')


def test_the_canary_copies_as_the_stacks_copy_role_like_the_load() -> None:
    stack_role = "arn:aws:iam::111122223333:role/Myshift-dev-StorageCopyRole-AbC"
    _, copy, _ = (s.sql for s in doctor.canary_statements(_pipeline(), "s3://b/m.json", stack_role))
    assert f"IAM_ROLE '{stack_role}'" in copy
    own = _pipeline().model_copy(
        update={
            "target": _pipeline().target.model_copy(
                update={"copy_role_arn": "arn:aws:iam::111122223333:role/own"}
            )
        }
    )
    _, copy, _ = (s.sql for s in doctor.canary_statements(own, "s3://b/m.json", stack_role))
    assert "IAM_ROLE 'arn:aws:iam::111122223333:role/own'" in copy


def test_privileges_query_names_the_folded_schema_tables_and_ledgers() -> None:
    sql = doctor.privileges_sql(_pipeline())
    assert "nspname = 'sales_dw'" in sql
    assert "tablename IN ('myshift_ledger_orders', 'orders')" in sql


def _privileges(
    schema: list[Any] | None, tables: list[list[Any]], create_db: bool = True
) -> list[list[Any]]:
    rows = [["database", "IAMR:p-load", create_db, None, None, None, None]]
    if schema is not None:
        rows.append(["schema", "sales_dw", *schema, None, None, None])
    return rows + [["table", *t] for t in tables]


def test_privileges_all_granted_pass() -> None:
    records = _privileges([True, True], [["orders", True, True, True, True, "IAMR:p-load"]])
    checks = doctor.privilege_checks(records, _pipeline(), function="Load")
    assert [c.status for c in checks] == ["pass", "pass"]


def test_privileges_name_what_is_missing_and_the_grant() -> None:
    records = _privileges([True, False], [["orders", False, True, False, True, "dba"]])
    schema, tables = doctor.privilege_checks(records, _pipeline(), function="Load")
    assert schema.status == "fail" and schema.detail.endswith("CREATE yes, USAGE no")
    assert schema.remedy == 'GRANT CREATE, USAGE ON SCHEMA "sales_dw" TO "IAMR:p-load"'
    assert tables.status == "fail"
    assert tables.detail == "orders (owner dba; lacks owner (ALTER), DELETE)"


def test_a_schema_to_be_created_needs_create_on_the_database() -> None:
    checks = doctor.privilege_checks(
        _privileges(None, [], create_db=False), _pipeline(), function="Load"
    )
    assert checks[0].status == "fail"
    assert checks[0].remedy.startswith('GRANT CREATE ON DATABASE "dev" TO "IAMR:p-load"')


def test_the_report_collects_every_branch_and_catch() -> None:
    passing = doctor.Check("Plan: x", "pass", "ok", by="Plan").as_dict()
    warning = doctor.Check("Plan: y", "warn", "hm", by="Plan").as_dict()
    results = [
        {"checks": [passing, warning]},
        {
            "pipeline": "p",
            "extract": {"checks": [passing], "canary": None},
            "failed": {
                "function": "Load",
                "Error": "Lambda.AWSLambdaException",
                "Cause": '{"errorMessage": "AccessDenied: not allowed"}',
            },
        },
    ]
    report = doctor.report("p", "run-1", results)
    assert [r["check"] for r in report["checks"]] == [
        "Plan: x",
        "Plan: y",
        "Load: function ran its checks",
        "Plan: x",
    ]
    assert report["failed"] == 1 and report["warnings"] == 1
    assert report["checks"][2]["detail"] == "Lambda.AWSLambdaException: AccessDenied: not allowed"
