"""The stand-in's Redshift rules: identifier folding and length, ALTER COLUMN TYPE."""

from __future__ import annotations

import pytest
from myshift.local.redshift_standin import (
    SqlTranslationError,
    _CopyError,
    is_alter_column_type,
    parse_copy,
    translate_sql,
)


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
