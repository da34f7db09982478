"""Redshift rules the stand-in enforces on PostgreSQL: identifier folding and length,
ALTER COLUMN TYPE (VARCHAR size only, never inside a transaction block), and the
database user's privileges.

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth); uses its own database and
database users (roles) named after this process, dropped at the end. The stand-in is
called directly (no moto server): these are rules of the SQL it runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from myshift.local.redshift_standin import CALLER, RedshiftDataStandIn, StandInAdminError
from psycopg import sql as pgsql

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
TEST_DB = f"myshift_standin_rules_{os.getpid()}"
TEST_DSN = ADMIN_DSN.rsplit("/", 1)[0] + f"/{TEST_DB}"
# The Data API names a role's database user IAMR:<role name>; the stand-in's role folds.
LOADER = f"Standin-Loader-{os.getpid()}"
OTHER = f"standin-other-{os.getpid()}"
TARGET = {
    "WorkgroupName": "local",
    "Database": "dev",
    CALLER: f"arn:aws:iam::123456789012:role/{LOADER}",
}
AS_OTHER = {**TARGET, CALLER: f"arn:aws:iam::123456789012:role/{OTHER}"}


def _drop() -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(
            pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(TEST_DB))
        )
        for user in (LOADER, OTHER):
            conn.execute(
                pgsql.SQL("DROP ROLE IF EXISTS {}").format(pgsql.Identifier(f"iamr:{user.lower()}"))
            )


@pytest.fixture(scope="module")
def standin() -> Iterator[RedshiftDataStandIn]:
    _drop()
    instance = RedshiftDataStandIn(TEST_DSN, lambda: None)
    try:
        yield instance
    finally:
        instance.shutdown()
        _drop()


def run(
    standin: RedshiftDataStandIn, *sqls: str, target: dict[str, str] = TARGET
) -> dict[str, Any]:
    """One statement, or several as one batch (one transaction); its final description."""
    if len(sqls) == 1:
        submitted = standin.execute_statement({"Sql": sqls[0], **target})
    else:
        submitted = standin.batch_execute_statement({"Sqls": list(sqls), **target})
    return wait(standin, submitted["Id"], target)


def wait(
    standin: RedshiftDataStandIn, statement_id: str, target: dict[str, str] = TARGET
) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        described = standin.describe_statement({"Id": statement_id, CALLER: target[CALLER]})
        if described["Status"] in ("FINISHED", "FAILED", "ABORTED"):
            return described
        assert time.monotonic() < deadline, f"statement still {described['Status']}"
        time.sleep(0.02)


def ok(standin: RedshiftDataStandIn, *sqls: str, target: dict[str, str] = TARGET) -> None:
    described = run(standin, *sqls, target=target)
    assert described["Status"] == "FINISHED", described.get("Error")


def failed(standin: RedshiftDataStandIn, *sqls: str, target: dict[str, str] = TARGET) -> str:
    described = run(standin, *sqls, target=target)
    assert described["Status"] == "FAILED", "the statement finished"
    return str(described["Error"])


def values(standin: RedshiftDataStandIn, sql: str, target: dict[str, str] = TARGET) -> list[Any]:
    """The first column of a query's rows."""
    described = run(standin, sql, target=target)
    assert described["Status"] == "FINISHED", described.get("Error")
    result = standin.get_statement_result({"Id": described["Id"], CALLER: target[CALLER]})
    return [next(iter(record[0].values())) for record in result["Records"]]


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


# --- database users and their privileges -----------------------------------------------------


def test_a_new_database_user_has_what_public_has(standin: RedshiftDataStandIn) -> None:
    assert values(standin, "SELECT current_user") == [f"iamr:{LOADER.lower()}"]
    assert failed(standin, "CREATE SCHEMA loads") == "ERROR: permission denied for database dev"
    # PUBLIC has CREATE on schema public in Redshift (not in PostgreSQL 15): so does the user.
    ok(standin, "CREATE TABLE public_scratch (a INT)")
    standin.run_as_admin("CREATE SCHEMA loads")
    assert failed(standin, "CREATE TABLE loads.t (a INT)") == (
        "ERROR: permission denied for schema loads"
    )
    # The README's kind of grant, to the name the Data API uses (quoted, any case).
    standin.run_as_admin(f'GRANT USAGE, CREATE ON SCHEMA loads TO "IAMR:{LOADER}"')
    ok(standin, "CREATE TABLE loads.t (a INT)", "INSERT INTO loads.t VALUES (1)")
    # Another identity is another user: it owns nothing, and was granted nothing.
    assert values(standin, "SELECT current_user", target=AS_OTHER) == [f"iamr:{OTHER}"]
    standin.run_as_admin(f'GRANT USAGE ON SCHEMA loads TO "IAMR:{OTHER}"')
    assert failed(standin, "SELECT * FROM loads.t", target=AS_OTHER) == (
        "ERROR: permission denied for relation t"
    )
    assert failed(standin, "ALTER TABLE loads.t ADD PRIMARY KEY (a)", target=AS_OTHER) == (
        "ERROR: must be owner of relation t"
    )
    with pytest.raises(StandInAdminError, match="does not exist"):
        standin.run_as_admin("GRANT SELECT ON loads.nope TO PUBLIC")


def test_a_capitalised_schema_folds_but_a_literal_does_not(standin: RedshiftDataStandIn) -> None:
    """Redshift folds "MySchema" to myschema; a string literal compared with
    information_schema stays as written: 'MySchema' finds nothing (the product folds)."""
    standin.run_as_admin(['CREATE SCHEMA "MySchema"', 'GRANT ALL ON SCHEMA "MySchema" TO PUBLIC'])
    ok(standin, 'CREATE TABLE "MySchema"."Stage" (a INT)')
    count = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{}'"
    assert values(standin, count.format("MySchema")) == [0]
    assert values(standin, count.format("myschema")) == [1]
