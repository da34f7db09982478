"""What the stand-in records about tables instead of letting PostgreSQL enforce it.

Redshift keeps PRIMARY KEY, UNIQUE and FOREIGN KEY as metadata: "Uniqueness, primary
key, and foreign key constraints are informational only; they are not enforced by Amazon
Redshift when you populate a table" ("Table constraints",
https://docs.aws.amazon.com/redshift/latest/dg/t_Defining_constraints.html). The keys
still matter: "You can't alter columns with UNIQUE, PRIMARY KEY, or FOREIGN KEY", nor
"a column with compression encodings BYTEDICT, RUNLENGTH, TEXT255, or TEXT32K"
(ALTER TABLE, https://docs.aws.amazon.com/redshift/latest/dg/r_ALTER_TABLE.html).

So the stand-in creates tables without those clauses (a duplicate key is stored, as in
Redshift) and records them here, in tables of its own schema `myshift_standin`, keyed by
the table's oid and the columns' attnums, so renaming a table or a column keeps them.
A metadata table was chosen over PostgreSQL COMMENTs: a user's COMMENT ON would overwrite
a comment, and a table answers "which keys hold this column" with one query.

Event triggers forget what a DROP TABLE / DROP COLUMN / DROP SCHEMA ... CASCADE removes,
whoever runs it; a temporary table dropped at the end of its session fires no trigger, so
every CREATE TABLE also clears rows left for a reused oid. Every function here runs as
the superuser of the stand-in's DSN (the database users have no access to the schema).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

SCHEMA = "myshift_standin"
PRIMARY_KEY, UNIQUE, FOREIGN_KEY = "PRIMARY KEY", "UNIQUE", "FOREIGN KEY"
# Encodings whose columns ALTER COLUMN TYPE refuses (ALTER TABLE, see above).
FROZEN_ENCODINGS = frozenset({"bytedict", "runlength", "text255", "text32k"})
POSTGRES_MAX_IDENTIFIER_BYTES = 63

_SETUP = [
    "CREATE SCHEMA IF NOT EXISTS myshift_standin",
    "REVOKE ALL ON SCHEMA myshift_standin FROM PUBLIC",
    """CREATE TABLE IF NOT EXISTS myshift_standin.constraints (
        table_oid oid NOT NULL,
        name text NOT NULL,
        kind text NOT NULL CHECK (kind IN ('PRIMARY KEY', 'UNIQUE', 'FOREIGN KEY')),
        columns smallint[] NOT NULL,
        reference text,
        PRIMARY KEY (table_oid, name))""",
    """CREATE TABLE IF NOT EXISTS myshift_standin.encodings (
        table_oid oid NOT NULL,
        attnum smallint NOT NULL,
        encoding text NOT NULL,
        PRIMARY KEY (table_oid, attnum))""",
    # SECURITY DEFINER: the trigger fires for every user's DDL, only the owner may write.
    """CREATE OR REPLACE FUNCTION myshift_standin.forget_dropped() RETURNS event_trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $body$
        DECLARE dropped record;
        BEGIN
          FOR dropped IN SELECT * FROM pg_event_trigger_dropped_objects()
                         WHERE classid = 'pg_class'::regclass LOOP
            DELETE FROM myshift_standin.constraints WHERE table_oid = dropped.objid
              AND (dropped.objsubid = 0 OR dropped.objsubid = ANY (columns));
            DELETE FROM myshift_standin.encodings WHERE table_oid = dropped.objid
              AND (dropped.objsubid = 0 OR attnum = dropped.objsubid);
          END LOOP;
        END $body$""",
    """CREATE OR REPLACE FUNCTION myshift_standin.forget_reused() RETURNS event_trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $body$
        DECLARE created record;
        BEGIN
          FOR created IN SELECT * FROM pg_event_trigger_ddl_commands()
                         WHERE classid = 'pg_class'::regclass LOOP
            DELETE FROM myshift_standin.constraints WHERE table_oid = created.objid;
            DELETE FROM myshift_standin.encodings WHERE table_oid = created.objid;
          END LOOP;
        END $body$""",
    "REVOKE ALL ON FUNCTION myshift_standin.forget_dropped(), myshift_standin.forget_reused() "
    "FROM PUBLIC",
]
_TRIGGERS = {
    "myshift_standin_forget_dropped": (
        "ON sql_drop EXECUTE FUNCTION myshift_standin.forget_dropped()"
    ),
    "myshift_standin_forget_reused": (
        "ON ddl_command_end WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO') "
        "EXECUTE FUNCTION myshift_standin.forget_reused()"
    ),
}


class KeyDefinitionError(Exception):
    """A key declaration Redshift refuses; the statement fails with this text."""


@dataclass(frozen=True)
class DeclaredKey:
    """A PRIMARY KEY, UNIQUE or FOREIGN KEY as declared (columns as PostgreSQL names them)."""

    kind: str
    columns: tuple[str, ...]
    name: str | None = None  # None: named as Redshift names it (`<table>_pkey`, ...)
    references: str | None = None  # FOREIGN KEY: `table (columns)` as written


def prepare(connection: psycopg.Connection[Any]) -> None:
    """Create the metadata schema, its tables and event triggers (idempotent).

    The first time, also give PUBLIC the CREATE privilege on schema public: "By default,
    all users have CREATE and USAGE permissions on the PUBLIC schema of a database"
    ("Default database user permissions",
    https://docs.aws.amazon.com/redshift/latest/dg/r_Privileges.html); PostgreSQL 15 no
    longer grants CREATE there, and every new database user has exactly what PUBLIC has.
    Later calls leave PUBLIC alone, so a DBA's REVOKE stays.
    """
    with connection.transaction():
        # Two processes preparing one database must not both create it.
        connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [SCHEMA])
        first = not connection.execute(
            "SELECT 1 FROM pg_namespace WHERE nspname = %s", [SCHEMA]
        ).fetchone()
        for statement in _SETUP:
            connection.execute(statement)
        existing = {row[0] for row in connection.execute("SELECT evtname FROM pg_event_trigger")}
        for name, body in _TRIGGERS.items():
            if name not in existing:
                connection.execute(f"CREATE EVENT TRIGGER {name} {body}")
        if first:
            connection.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")


def _attnums(connection: psycopg.Connection[Any], oid: int) -> dict[str, int]:
    return {name: attnum for name, attnum, _ in _columns(connection, oid)}


def _columns(connection: psycopg.Connection[Any], oid: int) -> list[tuple[str, int, bool]]:
    """(name, attnum, NOT NULL) of the table's columns."""
    return [
        (str(name), int(attnum), bool(not_null))
        for name, attnum, not_null in connection.execute(
            "SELECT attname, attnum, attnotnull FROM pg_attribute "
            "WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped",
            [oid],
        )
    ]


def _generated_name(relname: str, key: DeclaredKey, taken: set[str]) -> str:
    """The name PostgreSQL 8 (so Redshift) gives an unnamed key: t_pkey, t_c_key, t_c_fkey.

    The ALTER TABLE examples drop a primary key by such a name (`category_pkey`).
    """
    base = {
        PRIMARY_KEY: f"{relname}_pkey",
        UNIQUE: f"{relname}_{key.columns[0]}_key",
        FOREIGN_KEY: f"{relname}_{key.columns[0]}_fkey",
    }[key.kind]
    base = base.encode("utf-8")[:POSTGRES_MAX_IDENTIFIER_BYTES].decode("utf-8", "ignore")
    name, number = base, 0
    while name in taken:
        number += 1
        name = f"{base}{number}"
    return name


def record_keys(
    connection: psycopg.Connection[Any], oid: int, relname: str, keys: Iterable[DeclaredKey]
) -> None:
    """Record declared keys of table `oid`; KeyDefinitionError where Redshift refuses them."""
    keys = list(keys)
    if not keys:
        return
    columns = _columns(connection, oid)
    attnums = {name: attnum for name, attnum, _ in columns}
    nullable = {name for name, _, not_null in columns if not not_null}
    existing = {
        name: kind
        for name, kind in connection.execute(
            "SELECT name, kind FROM myshift_standin.constraints WHERE table_oid = %s", [oid]
        )
    }
    # Real PostgreSQL constraints (CHECK, ...) share the name space.
    taken = set(existing) | {
        row[0]
        for row in connection.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = %s", [oid]
        )
    }
    has_primary = PRIMARY_KEY in existing.values()
    for key in keys:
        for column in key.columns:
            if column not in attnums:
                raise KeyDefinitionError(f'column "{column}" named in key does not exist')
        if key.kind == PRIMARY_KEY:
            # ALTER TABLE reference: "You can't add a primary-key constraint to a nullable
            # column." (CREATE TABLE makes its primary-key columns NOT NULL.) Wording assumed.
            for column in key.columns:
                if column in nullable:
                    raise KeyDefinitionError(
                        f'column "{column}" is nullable: a primary key needs NOT NULL columns'
                    )
            if has_primary:
                raise KeyDefinitionError(
                    f'multiple primary keys for table "{relname}" are not allowed'
                )
            has_primary = True
        if key.name is not None and key.name in taken:
            raise KeyDefinitionError(
                f'constraint "{key.name}" for relation "{relname}" already exists'
            )
        name = key.name if key.name is not None else _generated_name(relname, key, taken)
        taken.add(name)
        connection.execute(
            "INSERT INTO myshift_standin.constraints (table_oid, name, kind, columns, reference) "
            "VALUES (%s, %s, %s, %s, %s)",
            [oid, name, key.kind, [attnums[c] for c in key.columns], key.references],
        )


def record_encodings(
    connection: psycopg.Connection[Any], oid: int, encodings: Mapping[str, str]
) -> None:
    """Record (or change) the ENCODE of columns of table `oid`, by column name."""
    if not encodings:
        return
    attnums = _attnums(connection, oid)
    for column, encoding in encodings.items():
        if column not in attnums:
            continue  # PostgreSQL has already refused a statement naming no such column
        connection.execute(
            "INSERT INTO myshift_standin.encodings (table_oid, attnum, encoding) "
            "VALUES (%s, %s, %s) "
            "ON CONFLICT (table_oid, attnum) DO UPDATE SET encoding = EXCLUDED.encoding",
            [oid, attnums[column], encoding.lower()],
        )


def copy_like(connection: psycopg.Connection[Any], parent_oid: int, oid: int, relname: str) -> None:
    """What CREATE TABLE ... (LIKE parent) takes over: encodings and UNIQUE keys.

    The CREATE TABLE reference (LIKE parent_table): "Tables created with the LIKE option
    don't inherit primary and foreign key constraints." It says nothing of UNIQUE or of
    column encodings: the stand-in takes both over, the stricter reading (more ALTER
    COLUMN TYPE refusals, never fewer).
    """
    parent_names = {attnum: name for name, attnum in _attnums(connection, parent_oid).items()}
    attnums = _attnums(connection, oid)
    encodings = {
        parent_names[attnum]: encoding
        for attnum, encoding in connection.execute(
            "SELECT attnum, encoding FROM myshift_standin.encodings WHERE table_oid = %s",
            [parent_oid],
        )
        if parent_names.get(attnum) in attnums
    }
    record_encodings(connection, oid, encodings)
    unique = [
        DeclaredKey(UNIQUE, tuple(parent_names[a] for a in columns))
        for (columns,) in connection.execute(
            "SELECT columns FROM myshift_standin.constraints WHERE table_oid = %s AND kind = %s "
            "ORDER BY name",
            [parent_oid, UNIQUE],
        )
        if all(parent_names.get(a) in attnums for a in columns)
    ]
    record_keys(connection, oid, relname, unique)


def keys_of_column(
    connection: psycopg.Connection[Any], oid: int, attnum: int
) -> list[tuple[str, str]]:
    """(name, kind) of the declared keys that include column `attnum` of table `oid`."""
    return [
        (str(name), str(kind))
        for name, kind in connection.execute(
            "SELECT name, kind FROM myshift_standin.constraints "
            "WHERE table_oid = %s AND %s = ANY (columns) ORDER BY name",
            [oid, attnum],
        )
    ]


def encoding_of_column(connection: psycopg.Connection[Any], oid: int, attnum: int) -> str | None:
    """The ENCODE recorded for a column, None if it was never given one."""
    row = connection.execute(
        "SELECT encoding FROM myshift_standin.encodings WHERE table_oid = %s AND attnum = %s",
        [oid, attnum],
    ).fetchone()
    return str(row[0]) if row else None


def forget_key(connection: psycopg.Connection[Any], oid: int, name: str) -> bool:
    """Drop the declared key `name` of table `oid`; False if there is none."""
    cursor = connection.execute(
        "DELETE FROM myshift_standin.constraints WHERE table_oid = %s AND name = %s", [oid, name]
    )
    return cursor.rowcount > 0


def has_key(connection: psycopg.Connection[Any], oid: int, name: str) -> bool:
    """True if table `oid` has a declared key named `name`."""
    return bool(
        connection.execute(
            "SELECT 1 FROM myshift_standin.constraints WHERE table_oid = %s AND name = %s",
            [oid, name],
        ).fetchone()
    )
