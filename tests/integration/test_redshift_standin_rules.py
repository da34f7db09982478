"""Redshift rules the stand-in enforces on PostgreSQL: identifier folding and length,
ALTER COLUMN TYPE (VARCHAR size only, never inside a transaction block, never on a key,
defaulted or BYTEDICT/RUNLENGTH/TEXT255/TEXT32K column), declared keys kept as metadata
(never enforced), SERIALIZABLE isolation (error 1023), and the database user's privileges.

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth); uses its own database and
database users (roles) named after this process, dropped at the end. The stand-in is
called directly (no moto server): these are rules of the SQL it runs.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from myshift.local.redshift_standin import CALLER, RedshiftDataStandIn, StandInAdminError
from psycopg import sql as pgsql

from tests.support.postgres import drop_database
from tests.support.standin import LOADER, TARGET, run, wait

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
TEST_DB = f"myshift_standin_rules_{os.getpid()}"
TEST_DSN = ADMIN_DSN.rsplit("/", 1)[0] + f"/{TEST_DB}"
OTHER = f"standin-other-{os.getpid()}"
AS_OTHER = {**TARGET, CALLER: f"arn:aws:iam::123456789012:role/{OTHER}"}


def _drop() -> None:
    drop_database(TEST_DB)
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
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


# --- declared keys are metadata, not constraints --------------------------------------------


def test_a_duplicate_primary_key_is_stored_as_redshift_stores_it(
    standin: RedshiftDataStandIn,
) -> None:
    ok(
        standin,
        "CREATE TABLE dup_keys (id BIGINT, code VARCHAR(8) UNIQUE, PRIMARY KEY (id))",
        "CREATE TABLE dup_children (pid BIGINT REFERENCES dup_keys (id))",
    )
    ok(
        standin,
        "INSERT INTO dup_keys VALUES (1, 'a'), (1, 'a')",
        "INSERT INTO dup_children VALUES (9)",
    )
    assert values(standin, "SELECT count(*) FROM dup_keys") == [2]
    assert values(standin, "SELECT count(*) FROM dup_children") == [1]  # no such parent
    # The key still makes its columns NOT NULL, as a declared primary key does.
    assert "null value in column" in failed(standin, "INSERT INTO dup_keys VALUES (NULL, 'b')")


@pytest.mark.parametrize(
    ("ddl", "column", "refusal"),
    [
        ("k VARCHAR(4) PRIMARY KEY, v INT", "k", 'is in PRIMARY KEY "alter_{n}_pkey"'),
        ("k VARCHAR(4), v INT, PRIMARY KEY (v, k)", "k", 'is in PRIMARY KEY "alter_{n}_pkey"'),
        ("k VARCHAR(4) UNIQUE, v INT", "k", 'is in UNIQUE "alter_{n}_k_key"'),
        ("k VARCHAR(4), v INT, CONSTRAINT uq UNIQUE (k)", "k", 'is in UNIQUE "uq"'),
        ("k VARCHAR(4) REFERENCES dup_keys (code), v INT", "k", "is in FOREIGN KEY"),
        ("k VARCHAR(4) DEFAULT 'x', v INT", "k", "with default values"),
        ("k VARCHAR(4) ENCODE bytedict, v INT", "k", "is ENCODE bytedict"),
        ("k VARCHAR(4) ENCODE RUNLENGTH, v INT", "k", "is ENCODE runlength"),
        ("k VARCHAR(4) ENCODE text255, v INT", "k", "is ENCODE text255"),
        ("k VARCHAR(4) ENCODE text32k, v INT", "k", "is ENCODE text32k"),
        ("k VARCHAR(4) ENCODE zstd, v INT PRIMARY KEY", "k", None),
        ("k VARCHAR(4) ENCODE lzo NOT NULL, v INT", "k", None),
    ],
)
def test_alter_column_type_is_refused_where_redshift_refuses_it(
    standin: RedshiftDataStandIn, ddl: str, column: str, refusal: str | None, request: Any
) -> None:
    n = request.node.callspec.indices["ddl"]
    table = f"alter_{n}"
    if "dup_keys" in ddl:
        ok(standin, "CREATE TABLE IF NOT EXISTS dup_keys (id BIGINT, code VARCHAR(8))")
    ok(standin, f"CREATE TABLE {table} ({ddl})")
    sql = f"ALTER TABLE {table} ALTER COLUMN {column} TYPE VARCHAR(40)"
    if refusal is None:
        ok(standin, sql)
        assert column_type(standin, table, column) == "character varying(40)"
        return
    error = failed(standin, sql)
    assert error.startswith("ERROR: ALTER TABLE ALTER COLUMN does not support columns with")
    assert refusal.format(n=n) in error
    assert column_type(standin, table, column) == "character varying(4)"


def test_keys_follow_the_table_through_its_ddl(standin: RedshiftDataStandIn) -> None:
    ok(standin, "CREATE TABLE life (k VARCHAR(4) PRIMARY KEY, v VARCHAR(4) ENCODE bytedict)")
    widen = "ALTER TABLE life ALTER COLUMN k TYPE VARCHAR(8)"
    # CREATE TABLE IF NOT EXISTS on the existing table declares nothing, forgets nothing.
    ok(standin, "CREATE TABLE IF NOT EXISTS life (k VARCHAR(4), v VARCHAR(4))")
    assert "PRIMARY KEY" in failed(standin, widen)
    ok(standin, "ALTER TABLE life RENAME COLUMN k TO key")  # the key follows the column
    assert 'column "key" of relation "life" is in PRIMARY KEY "life_pkey"' in failed(
        standin, "ALTER TABLE life ALTER COLUMN key TYPE VARCHAR(8)"
    )
    # LIKE copies no primary key (CREATE TABLE reference), the encoding it does (assumed).
    ok(standin, "CREATE TABLE life_copy (LIKE life)")
    ok(standin, "ALTER TABLE life_copy ALTER COLUMN key TYPE VARCHAR(8)")
    assert "ENCODE bytedict" in failed(
        standin, "ALTER TABLE life_copy ALTER COLUMN v TYPE VARCHAR(8)"
    )
    # Dropping the primary key by the name Redshift gives it frees the column.
    ok(standin, "ALTER TABLE life DROP CONSTRAINT life_pkey")
    ok(standin, "ALTER TABLE life ALTER COLUMN key TYPE VARCHAR(8)")
    assert 'constraint "life_pkey" of relation "life" does not exist' in failed(
        standin, "ALTER TABLE life DROP CONSTRAINT life_pkey"
    )
    # ADD CONSTRAINT declares again; a nullable column cannot be a primary key.
    assert "nullable" in failed(standin, "ALTER TABLE life ADD PRIMARY KEY (v)")
    ok(standin, "ALTER TABLE life ADD CONSTRAINT life_unique UNIQUE (key)")
    assert 'UNIQUE "life_unique"' in failed(
        standin, "ALTER TABLE life ALTER COLUMN key TYPE VARCHAR(9)"
    )
    ok(standin, "INSERT INTO life VALUES ('a', 'b'), ('a', 'b')")  # still not enforced
    # ADD COLUMN takes an encoding, never a key (Redshift's own refusal).
    ok(standin, "ALTER TABLE life ADD COLUMN w VARCHAR(4) ENCODE text255")
    assert "ENCODE text255" in failed(standin, "ALTER TABLE life ALTER COLUMN w TYPE VARCHAR(8)")
    ok(standin, "ALTER TABLE life ALTER COLUMN w ENCODE zstd")
    ok(standin, "ALTER TABLE life ALTER COLUMN w TYPE VARCHAR(8)")
    assert "does not support columns defined with UNIQUE or PRIMARY KEY" in failed(
        standin, "ALTER TABLE life ADD COLUMN x INT PRIMARY KEY"
    )
    # DROP TABLE forgets: a new table of that name starts without keys.
    ok(standin, "DROP TABLE life", "CREATE TABLE life (key VARCHAR(4) NOT NULL)")
    ok(standin, "ALTER TABLE life ALTER COLUMN key TYPE VARCHAR(8)")


def test_a_failed_batch_leaves_no_declared_key(standin: RedshiftDataStandIn) -> None:
    described = run(standin, "CREATE TABLE rolled (k VARCHAR(4) PRIMARY KEY)", "SELECT 1/0")
    assert described["Status"] == "FAILED"
    ok(standin, "CREATE TABLE rolled (k VARCHAR(4))")
    ok(standin, "ALTER TABLE rolled ALTER COLUMN k TYPE VARCHAR(8)")


# --- SERIALIZABLE: error 1023 ----------------------------------------------------------------


def test_concurrent_read_then_insert_aborts_one_with_1023(standin: RedshiftDataStandIn) -> None:
    """Both batches read the ledger, then insert into it: one commits, one gets 1023.

    A third session holds a SHARE lock on the ledger (it lets the reads through, holds
    the inserts) until both batches have read, so the two transactions overlap for sure.
    """
    ok(standin, "CREATE TABLE ledger (run_id VARCHAR(8), loaded BIGINT)")
    with psycopg.connect(TEST_DSN) as blocker:
        blocker.execute("LOCK TABLE ledger IN SHARE MODE")
        ids = [
            standin.batch_execute_statement(
                {
                    "Sqls": [
                        "SELECT COUNT(*) FROM ledger",
                        f"INSERT INTO ledger VALUES ('run-{n}', 1)",
                    ],
                    **TARGET,
                }
            )["Id"]
            for n in (1, 2)
        ]
        deadline = time.monotonic() + 20
        while blocker.execute(
            "SELECT count(*) FROM pg_locks WHERE relation = 'ledger'::regclass AND NOT granted"
        ).fetchone() != (2,):
            assert time.monotonic() < deadline, "the inserts never queued on the lock"
            time.sleep(0.02)
        blocker.rollback()  # both have read: let the inserts go
    outcomes = [wait(standin, statement_id) for statement_id in ids]
    assert sorted(o["Status"] for o in outcomes) == ["FAILED", "FINISHED"]
    error = next(o["Error"] for o in outcomes if o["Status"] == "FAILED")
    oid = values(standin, "SELECT 'ledger'::regclass::oid::int")[0]
    assert re.fullmatch(
        f"ERROR: 1023 DETAIL: Serializable isolation violation on table - {oid}, "
        r"transactions forming the cycle are: \d+, \d+ \(pid:\d+\)",
        error,
    ), error
    assert values(standin, "SELECT COUNT(*) FROM ledger") == [1]


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
