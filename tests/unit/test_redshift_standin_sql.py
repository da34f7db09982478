"""The stand-in's Redshift rules: identifier folding and length, ALTER COLUMN TYPE,
declared keys and encodings kept as metadata, the database user of a call."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws
from myshift.local.redshift_catalog import FOREIGN_KEY, PRIMARY_KEY, UNIQUE, DeclaredKey
from myshift.local.redshift_standin import (
    SqlTranslationError,
    _CopyError,
    is_alter_column_type,
    parse_copy,
    plan_table_ddl,
    translate_sql,
)
from myshift.local.redshift_users import CALLER, DatabaseUserError, database_user, role_name


def test_quoted_identifiers_fold_to_lower_case_as_in_redshift() -> None:
    out = translate_sql('SELECT "MixedCase", \'Keep Me\' AS "Ä_Col" FROM "Sch"."Tab"')
    # ASCII letters fold; literals and non-ASCII letters stay as written.
    assert out == 'SELECT "mixedcase", \'Keep Me\' AS "Ä_col" FROM "sch"."tab"'
    assert translate_sql('SELECT 1 AS "a""B"') == 'SELECT 1 AS "a""b"'


def test_names_up_to_63_bytes_pass() -> None:
    name = "a" * 63
    assert translate_sql(f'CREATE TABLE "{name}" ({name} INT)').count(name) == 2
    assert translate_sql(f'SELECT "{"가" * 21}"')  # 63 bytes


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (f"CREATE TABLE t ({'c' * 64} INT)", "64 bytes: Redshift allows 127, but the local"),
        (f'SELECT 1 AS "{"가" * 22}"', "66 bytes: Redshift allows 127"),
        (f'CREATE TABLE "{"t" * 128}" (a INT)', "128 bytes; Redshift allows at most 127"),
    ],
)
def test_longer_names_are_refused_not_cut(sql: str, message: str) -> None:
    with pytest.raises(SqlTranslationError, match=message):
        translate_sql(sql)


def test_long_literals_and_comments_are_not_names() -> None:
    long = "x" * 200
    assert translate_sql(f"SELECT '{long}' -- {long}\n") == f"SELECT '{long}' -- {long}\n"


def test_copy_folds_and_checks_its_names() -> None:
    spec = parse_copy('COPY "Sch"."Stage" ("Id", b) FROM \'s3://b/k\' IAM_ROLE default PARQUET')
    assert spec.table == '"sch"."stage"' and spec.columns == ["id", "b"]
    with pytest.raises(_CopyError, match="64 bytes"):
        parse_copy(f"COPY {'s' * 64} FROM 's3://b/k' IAM_ROLE default FORMAT AS PARQUET")


def test_alter_column_type_is_recognised_and_limited_to_varchar() -> None:
    widen = 'ALTER TABLE "s"."t" ALTER COLUMN "a" TYPE VARCHAR(80)'
    assert is_alter_column_type(widen) and translate_sql(widen) == widen
    assert not is_alter_column_type('ALTER TABLE t ADD COLUMN "type" VARCHAR(8)')
    with pytest.raises(SqlTranslationError, match="only changes the size of a VARCHAR"):
        translate_sql("ALTER TABLE t ALTER COLUMN a TYPE BIGINT")


# --- declared keys and encodings: metadata for the stand-in, never PostgreSQL constraints ---


def test_create_table_keys_are_stripped_and_listed() -> None:
    plan = plan_table_ddl(
        'CREATE TABLE IF NOT EXISTS "S"."T" (id BIGINT ENCODE az64, "Code" VARCHAR(10) '
        "ENCODE BYTEDICT UNIQUE, note VARCHAR(20) DEFAULT 'PRIMARY KEY', "
        'PRIMARY KEY (id, "Code")) DISTSTYLE KEY DISTKEY(id)'
    )
    assert plan is not None and plan.action == "create" and plan.if_not_exists
    assert (plan.table, plan.relname) == ('"s"."t"', "t")
    assert plan.keys == [
        DeclaredKey(UNIQUE, ("code",)),
        DeclaredKey(PRIMARY_KEY, ("id", "code")),
    ]
    assert plan.encodings == {"id": "az64", "code": "bytedict"}
    assert plan.sql is not None
    for gone in ("UNIQUE", "PRIMARY KEY (", "PRIMARY KEY,"):
        assert gone not in plan.sql
    assert "DEFAULT 'PRIMARY KEY'" in plan.sql  # a literal is not a clause
    # The key's columns become NOT NULL, as a declared primary key makes them.
    assert "id BIGINT ENCODE az64 NOT NULL" in plan.sql
    assert '"code" VARCHAR(10) ENCODE BYTEDICT   NOT NULL' in plan.sql
    translated = translate_sql(plan.sql)
    assert "PRIMARY" not in translated.replace("'PRIMARY KEY'", "") and "ENCODE" not in translated


def test_column_references_and_named_constraints() -> None:
    plan = plan_table_ddl(
        "CREATE TABLE c (pid INT REFERENCES parent_rows (id), x INT CONSTRAINT u1 UNIQUE, "
        "CONSTRAINT fk FOREIGN KEY (x) REFERENCES p(y))"
    )
    assert plan is not None and plan.sql == "CREATE TABLE c (pid INT  , x INT  )"
    assert plan.keys == [
        DeclaredKey(FOREIGN_KEY, ("pid",), None, "parent_rows (id)"),
        DeclaredKey(UNIQUE, ("x",), "u1"),
        DeclaredKey(FOREIGN_KEY, ("x",), "fk", "p (y)"),
    ]


def test_foreign_key_takes_only_what_redshift_grammar_has() -> None:
    with pytest.raises(SqlTranslationError, match="REFERENCES reftable"):
        plan_table_ddl("CREATE TABLE c (x INT, FOREIGN KEY (x) REFERENCES p (y) ON DELETE CASCADE)")
    with pytest.raises(SqlTranslationError, match="after PRIMARY KEY"):
        plan_table_ddl("CREATE TABLE c (x INT, PRIMARY KEY (x) DEFERRABLE)")


def test_tables_without_keys_run_as_written() -> None:
    assert plan_table_ddl("CREATE TABLE plain (a INT, b VARCHAR(3) NOT NULL)") is None
    assert plan_table_ddl("CREATE TABLE t2 (a, b) AS SELECT 1, 2") is None
    assert plan_table_ddl("ALTER TABLE t ALTER SORTKEY (a)") is None
    assert plan_table_ddl("ALTER TABLE t ADD COLUMN c INT DEFAULT 0") is None
    like = plan_table_ddl("CREATE TEMP TABLE stage (LIKE bulk)")
    assert (
        like is not None
        and like.like == "bulk"
        and like.sql == "CREATE TEMP TABLE stage (LIKE bulk)"
    )


def test_alter_table_plans() -> None:
    encoded = plan_table_ddl("ALTER TABLE t ADD COLUMN c VARCHAR(3) ENCODE text255")
    assert encoded is not None and encoded.action == "add_column"
    assert encoded.encodings == {"c": "text255"}
    key = plan_table_ddl("ALTER TABLE s.t ADD CONSTRAINT k PRIMARY KEY (a, b)")
    assert key is not None and key.action == "add_key" and key.sql is None
    assert key.keys == [DeclaredKey(PRIMARY_KEY, ("a", "b"), "k")]
    dropped = plan_table_ddl('ALTER TABLE t DROP CONSTRAINT "T_pkey"')
    assert dropped is not None and dropped.constraint == "t_pkey"
    altered = plan_table_ddl('ALTER TABLE "s".t ALTER COLUMN "A" TYPE VARCHAR(9)')
    assert altered is not None and altered.action == "alter_type" and altered.column == "a"
    recoded = plan_table_ddl("ALTER TABLE t ALTER COLUMN a ENCODE zstd, ALTER COLUMN b ENCODE LZO")
    assert recoded is not None and recoded.encodings == {"a": "zstd", "b": "lzo"}


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("ALTER TABLE t ADD c INT PRIMARY KEY", "columns defined with UNIQUE or PRIMARY KEY"),
        ("ALTER TABLE t ADD COLUMN c INT UNIQUE", "columns defined with UNIQUE or PRIMARY KEY"),
        ("ALTER TABLE t ADD COLUMN c INT REFERENCES p (id)", r"REFERENCES \(FOREIGN KEY\)"),
    ],
)
def test_add_column_with_a_key_is_refused(sql: str, message: str) -> None:
    with pytest.raises(SqlTranslationError, match=message):
        plan_table_ddl(sql)


# --- the database user of a Data API call --------------------------------------------------

ACCOUNT = "123456789012"


@pytest.mark.parametrize(
    ("params", "user"),
    [
        ({"WorkgroupName": "wg", CALLER: f"arn:aws:iam::{ACCOUNT}:role/Loader"}, "IAMR:Loader"),
        (
            {"WorkgroupName": "wg", CALLER: f"arn:aws:iam::{ACCOUNT}:role/svc/x/loader"},
            "IAMR:loader",
        ),
        (
            {"WorkgroupName": "wg", CALLER: f"arn:aws:sts::{ACCOUNT}:assumed-role/Loader/s1"},
            "IAMR:Loader",
        ),
        ({"WorkgroupName": "wg", CALLER: f"arn:aws:iam::{ACCOUNT}:user/ops/alice"}, "IAM:alice"),
        ({"ClusterIdentifier": "c", CALLER: f"arn:aws:iam::{ACCOUNT}:role/Loader"}, "IAMR:Loader"),
        ({"ClusterIdentifier": "c", "DbUser": "loader", CALLER: "arn:x"}, "loader"),
        ({"WorkgroupName": "wg", CALLER: "AKIAEXAMPLE"}, "IAM:AKIAEXAMPLE"),
    ],
)
def test_database_user_is_named_as_the_data_api_names_it(params: dict[str, str], user: str) -> None:
    assert database_user(params) == user


def test_database_user_refusals() -> None:
    with pytest.raises(DatabaseUserError, match="only for a provisioned cluster"):
        database_user({"WorkgroupName": "wg", "DbUser": "loader"})
    with pytest.raises(DatabaseUserError, match="no IAM identity"):
        database_user({"WorkgroupName": "wg"})
    with pytest.raises(DatabaseUserError, match="secret ARN"):
        database_user({"WorkgroupName": "wg", "SecretArn": "arn:secret:nope"})


def test_secret_user_comes_from_the_secret() -> None:
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        arn = client.create_secret(
            Name="warehouse", SecretString=json.dumps({"username": "Loader", "password": "p"})
        )["ARN"]
        bare = client.create_secret(Name="bare", SecretString="not json")["ARN"]
        params = {"WorkgroupName": "wg", CALLER: f"arn:aws:iam::{ACCOUNT}:role/x", "SecretArn": arn}
        assert database_user(params) == "Loader"  # the secret wins over the identity
        with pytest.raises(DatabaseUserError, match="'username'"):
            database_user({**params, "SecretArn": bare})
        with pytest.raises(DatabaseUserError, match="can't find the specified secret"):
            database_user({**params, "SecretArn": arn.replace("warehouse", "other")})
    assert role_name("IAMR:Loader") == "iamr:loader"
