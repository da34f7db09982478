"""Redshift rules the stand-in enforces on PostgreSQL: identifier folding and length,
and ALTER COLUMN TYPE (VARCHAR size only, never inside a transaction block).

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth); uses its own database.
The stand-in is called directly (no moto server): these are rules of the SQL it runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from myshift.local.redshift_standin import RedshiftDataStandIn

from tests.support.postgres import drop_database

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
TEST_DB = f"myshift_standin_rules_{os.getpid()}"
TARGET = {"WorkgroupName": "local", "Database": "dev"}


def _drop() -> None:
    drop_database(TEST_DB)


@pytest.fixture(scope="module")
def standin() -> Iterator[RedshiftDataStandIn]:
    _drop()
    instance = RedshiftDataStandIn(ADMIN_DSN.rsplit("/", 1)[0] + f"/{TEST_DB}", lambda: None)
    try:
        yield instance
    finally:
        instance.shutdown()
        _drop()


def run(standin: RedshiftDataStandIn, *sqls: str) -> dict[str, Any]:
    """One statement, or several as one batch (one transaction); its final description."""
    if len(sqls) == 1:
        submitted = standin.execute_statement({"Sql": sqls[0], **TARGET})
    else:
        submitted = standin.batch_execute_statement({"Sqls": list(sqls), **TARGET})
    while True:
        described = standin.describe_statement({"Id": submitted["Id"]})
        if described["Status"] in ("FINISHED", "FAILED", "ABORTED"):
            return described
        time.sleep(0.02)


def column_type(standin: RedshiftDataStandIn, table: str, column: str) -> str:
    described = run(
        standin,
        f"SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
        f"WHERE attrelid = '{table}'::regclass AND attname = '{column}'",
    )
    assert described["Status"] == "FINISHED", described.get("Error")
    result = standin.get_statement_result({"Id": described["Id"]})
    return str(result["Records"][0][0]["stringValue"])


def test_quoted_names_are_folded_so_both_spellings_reach_one_table(
    standin: RedshiftDataStandIn,
) -> None:
    created = run(
        standin, 'CREATE TABLE "Folded_Case" ("Id" INT)', "INSERT INTO folded_case VALUES (1)"
    )
    assert created["Status"] == "FINISHED", created.get("Error")
    described = run(standin, 'SELECT "ID" FROM "FOLDED_CASE"')
    result = standin.get_statement_result({"Id": described["Id"]})
    assert result["ColumnMetadata"][0]["name"] == "id"
    assert result["Records"] == [[{"longValue": 1}]]


def test_a_name_postgresql_would_cut_fails_the_statement(standin: RedshiftDataStandIn) -> None:
    long = "n" * 70
    described = run(standin, f"CREATE TABLE {long} (a INT)")
    assert described["Status"] == "FAILED"
    assert "70 bytes: Redshift allows 127, but the local stand-in" in described["Error"]
    exists = run(standin, f"SELECT 1 FROM {long[:63]}")
    assert exists["Status"] == "FAILED"  # nothing was created under a cut name


def test_alter_column_type_runs_alone_and_only_widens_varchar(
    standin: RedshiftDataStandIn,
) -> None:
    assert run(standin, "CREATE TABLE widen_me (a VARCHAR(4), b INT)")["Status"] == "FINISHED"
    in_batch = run(standin, "SELECT 1", "ALTER TABLE widen_me ALTER COLUMN a TYPE VARCHAR(40)")
    assert in_batch["Status"] == "FAILED"
    assert "cannot run inside a transaction block" in in_batch["Error"]
    assert column_type(standin, "widen_me", "a") == "character varying(4)"

    other = run(standin, "ALTER TABLE widen_me ALTER COLUMN b TYPE BIGINT")
    assert other["Status"] == "FAILED"
    assert "only changes the size of a VARCHAR column" in other["Error"]
    assert column_type(standin, "widen_me", "b") == "integer"

    alone = run(standin, 'ALTER TABLE "widen_me" ALTER COLUMN "a" TYPE VARCHAR(40)')
    assert alone["Status"] == "FINISHED", alone.get("Error")
    assert column_type(standin, "widen_me", "a") == "character varying(40)"
