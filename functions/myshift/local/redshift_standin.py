"""A local stand-in for the Amazon Redshift Data API, backed by a real PostgreSQL.

moto's own `redshift-data` backend runs no SQL. This module answers the Data API
(execute / batch / describe / get_statement_result / cancel / list) with the same
shapes, statuses and limits as the real service, runs the SQL on PostgreSQL after a
small Redshift -> PostgreSQL translation, and emulates `COPY ... FORMAT AS PARQUET`
as strictly as Redshift applies it (by-position mapping, exact Parquet types, VARCHAR
lengths in bytes), so that a load that would fail on Redshift fails here too. It runs
every statement as the Data API's database user with that user's privileges, at
SERIALIZABLE isolation (error 1023), keeps declared keys as metadata (never enforced)
and refuses ALTER COLUMN TYPE where Redshift does. Each rule, its source and how
`myshift doctor` checks it in an account: docs/redshift-standin.md.

`myshift.local.redshift_moto.install()` wires an instance into moto's server.
Nothing here logs or returns a SecretArn or COPY credentials.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import io
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from psycopg import sql as pgsql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from myshift.local import redshift_catalog as catalog
from myshift.local.redshift_catalog import FOREIGN_KEY, PRIMARY_KEY, UNIQUE, DeclaredKey
from myshift.local.redshift_users import (
    CALLER,
    DatabaseUserError,
    database_user,
    role_name,
)

log = logging.getLogger(__name__)

MAX_BATCH_STATEMENTS = 40
MAX_SQL_BYTES = 100 * 1024
MAX_NUMERIC_PRECISION = 38
MAX_VARCHAR_BYTES = 65535
# Redshift names may have 127 bytes; PostgreSQL keeps 63 (NAMEDATALEN - 1) and silently
# cuts longer ones, which can merge two names: the stand-in refuses them instead.
MAX_IDENTIFIER_BYTES = 127
POSTGRES_MAX_IDENTIFIER_BYTES = 63

SUBMITTED, PICKED, STARTED = "SUBMITTED", "PICKED", "STARTED"
FINISHED, FAILED, ABORTED = "FINISHED", "FAILED", "ABORTED"
TERMINAL = frozenset({FINISHED, FAILED, ABORTED})
ALL_STATUSES = frozenset({SUBMITTED, PICKED, STARTED, FINISHED, FAILED, ABORTED})

# Options Redshift accepts in a COPY from Parquet (see "COPY from columnar data formats").
_PARQUET_COPY_OPTIONS = frozenset(
    {"ACCEPTINVCHARS", "FILLRECORD", "STATUPDATE", "MANIFEST", "EXPLICIT_IDS", "SERIALIZETOJSON"}
)
_AUTH_OPTIONS = frozenset(
    {"IAM_ROLE", "CREDENTIALS", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "SESSION_TOKEN"}
)
_FORMAT_NAMES = frozenset({"PARQUET", "ORC", "CSV", "JSON", "AVRO", "SHAPEFILE", "FIXEDWIDTH"})


class StandInValidationError(Exception):
    """The request is invalid (the Data API's ValidationException)."""


class StandInNotFoundError(Exception):
    """No statement has the given id (the Data API's ResourceNotFoundException)."""


class SqlTranslationError(Exception):
    """Redshift would refuse this SQL; the statement fails with this text."""


class _CopyError(Exception):
    """A COPY failed the way Redshift's COPY would fail."""


class _Cancelled(Exception):
    """The statement was cancelled while the stand-in itself was working (COPY)."""


# --- SQL lexing -----------------------------------------------------------------------

# Literals, quoted identifiers and comments: the translation never rewrites inside them.
_OPAQUE = re.compile(
    r"""
      '(?:[^']|'')*'                      # string literal
    | "(?:[^"]|"")*"                      # quoted identifier
    | --[^\n]*                            # line comment
    | /\*.*?\*/                           # block comment
    | \$(?P<tag>[A-Za-z_]\w*)?\$.*?\$(?P=tag)?\$   # dollar-quoted body
    """,
    re.S | re.X,
)
_SENTINEL = re.compile(r"\x00(\d+)\x00")


def _mask(sql: str) -> tuple[str, list[str]]:
    """Replace literals/identifiers/comments by numbered sentinels."""
    kept: list[str] = []

    def keep(match: re.Match[str]) -> str:
        kept.append(match.group(0))
        return f"\x00{len(kept) - 1}\x00"

    return _OPAQUE.sub(keep, sql), kept


def _unmask(text: str, kept: list[str]) -> str:
    return _SENTINEL.sub(lambda m: kept[int(m.group(1))], text)


# --- Redshift -> PostgreSQL translation ---------------------------------------------------

_FLAGS = re.I | re.S
# ALTER TABLE ... ALTER DISTKEY/SORTKEY/ENCODE only changes physical layout in Redshift.
_ALTER_LAYOUT = re.compile(
    r"^\s*ALTER\s+TABLE\s+(?P<table>(?:[\w$]+|\x00\d+\x00)(?:\s*\.\s*(?:[\w$]+|\x00\d+\x00))*)"
    r"\s+ALTER\s+(?:COLUMN\s+\S+\s+)?(?:DISTSTYLE|DISTKEY|SORTKEY|COMPOUND|INTERLEAVED|ENCODE)\b",
    _FLAGS,
)
# ALTER TABLE ... ALTER COLUMN c TYPE t: Redshift only changes a VARCHAR's size this way,
# and never inside a transaction block.
_ALTER_TYPE = re.compile(
    r"^\s*ALTER\s+TABLE\s+.+?\s+ALTER\s+(?:COLUMN\s+)?(?:[\w$]+|\x00\d+\x00)\s+"
    r"TYPE\s+(?P<type>.+?)\s*;?\s*$",
    _FLAGS,
)
_ALTER_TYPE_IN_TRANSACTION = "ALTER TABLE ALTER COLUMN cannot run inside a transaction block"
_STRIP_PATTERNS = [
    re.compile(r"\bDISTSTYLE\s+(?:ALL|EVEN|KEY|AUTO)\b", _FLAGS),
    re.compile(r"\b(?:COMPOUND\s+|INTERLEAVED\s+)?SORTKEY\s*(?:\([^)]*\)|\bAUTO\b)?", _FLAGS),
    re.compile(r"\bDISTKEY\s*(?:\([^)]*\))?", _FLAGS),
    re.compile(r"\bENCODE\s+[A-Za-z_]\w*", _FLAGS),  # not `encode(` the PostgreSQL function
    re.compile(r"\bBACKUP\s+(?:YES|NO)\b", _FLAGS),
]
_VARBYTE = re.compile(r"\b(?:VARBYTE|VARBINARY|BINARY\s+VARYING)\b(?:\s*\(\s*\d+\s*\))?", _FLAGS)
_SUPER = re.compile(r"\bSUPER\b", _FLAGS)
_IDENTITY = re.compile(
    r"(?:\bGENERATED\s+BY\s+DEFAULT\s+AS\s+)?\bIDENTITY\s*\(\s*(-?\d+)\s*,\s*(-?\d+)\s*\)", _FLAGS
)
_NUMERIC = re.compile(r"\b(?:DECIMAL|NUMERIC)\s*\(\s*(\d+)\s*(?:,\s*(-?\d+)\s*)?\)", _FLAGS)
_VARCHAR_MAX = re.compile(r"\b(?:N?VARCHAR|CHARACTER\s+VARYING)\s*\(\s*MAX\s*\)", _FLAGS)
_VARCHAR_N = re.compile(r"\b(?:N?VARCHAR|CHARACTER\s+VARYING)\s*\(\s*(\d+)\s*\)", _FLAGS)
_NVARCHAR = re.compile(r"\bNVARCHAR\b", _FLAGS)
_FUNCTIONS = [
    # Redshift functions with a direct PostgreSQL equivalent, common in load scripts.
    (re.compile(r"\bGETDATE\s*\(\s*\)", _FLAGS), "LOCALTIMESTAMP(0)"),
    (re.compile(r"\bSYSDATE\b", _FLAGS), "LOCALTIMESTAMP"),
    (re.compile(r"\bNVL\s*\(", _FLAGS), "COALESCE("),
]
_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
# A database user for temporary credentials only (CREATE USER, "PASSWORD DISABLE"): the
# stand-in's users are roles it becomes with SET SESSION AUTHORIZATION, without a login.
_CREATE_USER_PASSWORD_DISABLE = re.compile(
    r"^\s*CREATE\s+USER\s+(?P<name>[\w$]+|\x00\d+\x00)\s+(?:WITH\s+)?PASSWORD\s+DISABLE\s*;?\s*$",
    _FLAGS,
)


def _identity(match: re.Match[str]) -> str:
    seed, step = int(match.group(1)), int(match.group(2))
    if step == 0:
        raise SqlTranslationError("IDENTITY step must not be zero")
    options = f"START WITH {seed} INCREMENT BY {step}"
    # PostgreSQL's default bounds would refuse Redshift's common IDENTITY(0, 1).
    if step > 0 and seed < 1:
        options += f" MINVALUE {seed}"
    if step < 0 and seed > -1:
        options += f" MAXVALUE {seed}"
    return f"GENERATED BY DEFAULT AS IDENTITY ({options})"


def _numeric(match: re.Match[str]) -> str:
    precision = int(match.group(1))
    if not 1 <= precision <= MAX_NUMERIC_PRECISION:
        raise SqlTranslationError(
            f"NUMERIC precision {precision} must be between 1 and {MAX_NUMERIC_PRECISION}"
        )
    return match.group(0)


def _varchar(match: re.Match[str]) -> str:
    length = int(match.group(1))
    if length > MAX_VARCHAR_BYTES:
        raise SqlTranslationError(f"length for type varchar cannot exceed {MAX_VARCHAR_BYTES}")
    return f"VARCHAR({length})"


# An unquoted name in masked SQL (literals and quoted names are sentinels by then).
_BARE_WORD = re.compile(r"(?<![\w$])[^\W\d][\w$]*")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def check_identifier(name: str) -> None:
    """SqlTranslationError for a name Redshift refuses or the stand-in cannot keep whole."""
    size = len(name.encode("utf-8"))
    shown = name if len(name) <= 40 else name[:40] + "..."
    if size > MAX_IDENTIFIER_BYTES:
        raise SqlTranslationError(
            f'identifier "{shown}" is {size} bytes; Redshift allows at most {MAX_IDENTIFIER_BYTES}'
        )
    if size > POSTGRES_MAX_IDENTIFIER_BYTES:
        raise SqlTranslationError(
            f'identifier "{shown}" is {size} bytes: Redshift allows {MAX_IDENTIFIER_BYTES}, but '
            f"the local stand-in (PostgreSQL) keeps only {POSTGRES_MAX_IDENTIFIER_BYTES} and "
            "would cut it; use a name of at most 63 bytes to run it locally"
        )


def fold_quoted_identifier(quoted: str) -> str:
    """A delimited identifier as Redshift resolves it: ASCII letters folded to lower case.

    Redshift folds `"MixedCase"` to `mixedcase` (unless the session sets
    enable_case_sensitive_identifier, which the stand-in does not support);
    PostgreSQL would keep the case and find no such table.
    """
    name = quoted[1:-1].replace('""', '"')
    check_identifier(name)
    return '"' + name.translate(_ASCII_LOWER).replace('"', '""') + '"'


def _quote_literal(value: str) -> str:
    # standard_conforming_strings is forced on for every session, so only quotes double.
    return "'" + value.replace("'", "''") + "'"


def _masked(sql: str) -> tuple[str, list[str]]:
    """`_mask`, with quoted identifiers folded as Redshift resolves them."""
    text, kept = _mask(sql)
    return text, [fold_quoted_identifier(k) if k.startswith('"') else k for k in kept]


def translate_sql(sql: str, parameters: Sequence[Mapping[str, Any]] | None = None) -> str:
    """Rewrite Redshift-only SQL so PostgreSQL runs it with the same meaning.

    Strips physical-layout clauses (DISTSTYLE, DISTKEY, SORTKEY, ENCODE, BACKUP), maps
    VARBYTE -> BYTEA, SUPER -> JSONB, IDENTITY(seed, step) -> an identity column,
    VARCHAR(MAX) -> VARCHAR(65535), and binds Data API `:name` parameters as literals.
    Folds the ASCII letters of quoted identifiers to lower case, as Redshift does.
    Raises SqlTranslationError where Redshift itself refuses the SQL (DECIMAL precision
    over 38, VARCHAR over 65535 bytes, a name over 127 bytes) and for names of 64-127
    bytes, which PostgreSQL would cut. Never rewrites inside literals or comments.
    """
    text, kept = _masked(sql)
    for word in _BARE_WORD.findall(text):
        check_identifier(word)
    user = _CREATE_USER_PASSWORD_DISABLE.match(text)
    if user:
        return _unmask(f"CREATE ROLE {user['name']} NOLOGIN", kept)
    altered = _ALTER_TYPE.match(text)
    if altered and not re.fullmatch(
        r"(?:N?VARCHAR|CHARACTER\s+VARYING)\s*\(\s*(?:\d+|MAX)\s*\)", altered["type"], _FLAGS
    ):
        raise SqlTranslationError(
            f"ALTER COLUMN TYPE only changes the size of a VARCHAR column, not to {altered['type']}"
        )
    layout = _ALTER_LAYOUT.match(text)
    if layout:
        # Keep the "relation does not exist" error, drop the layout change.
        table = _unmask(layout.group("table"), kept)
        return f"DO $standin$BEGIN PERFORM {_quote_literal(table)}::regclass; END$standin$"
    for pattern in _STRIP_PATTERNS:
        text = pattern.sub(" ", text)
    text = _VARBYTE.sub("BYTEA", text)
    text = _SUPER.sub("JSONB", text)
    text = _IDENTITY.sub(_identity, text)
    text = _NUMERIC.sub(_numeric, text)
    text = _VARCHAR_MAX.sub(f"VARCHAR({MAX_VARCHAR_BYTES})", text)
    text = _VARCHAR_N.sub(_varchar, text)
    text = _NVARCHAR.sub("VARCHAR", text)
    for pattern, replacement in _FUNCTIONS:
        text = pattern.sub(replacement, text)
    if parameters:
        values = {str(p["name"]): str(p["value"]) for p in parameters}

        def bind(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in values:
                return match.group(0)  # left for PostgreSQL to refuse
            kept.append(_quote_literal(values[name]))
            return f"\x00{len(kept) - 1}\x00"

        text = _PARAMETER.sub(bind, text)
    return _unmask(text, kept)


_CREDENTIAL_LITERAL = re.compile(
    r"\b(CREDENTIALS(?:\s+AS)?|ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN)\s+'(?:[^']|'')*'",
    re.I,
)


def is_alter_column_type(sql: str) -> bool:
    """True for `ALTER TABLE ... ALTER COLUMN ... TYPE ...` (refused in a transaction)."""
    return bool(_ALTER_TYPE.match(_mask(sql)[0]))


def redact_sql(sql: str) -> str:
    """The SQL with COPY credentials blanked, safe to return or log."""
    return _CREDENTIAL_LITERAL.sub(lambda m: f"{m.group(1)} '***'", sql)


# --- declared keys and column encodings: Redshift metadata, never enforced ------------------

# A name in masked SQL (a quoted one is a sentinel by then), and a qualified one.
_NAME = r"(?:[^\W\d][\w$]*|\x00\d+\x00)"
_QUALIFIED = rf"{_NAME}(?:\s*\.\s*{_NAME}){{0,2}}"
_CREATE_TABLE = re.compile(
    r"^\s*CREATE\s+(?:(?:LOCAL\s+)?(?:TEMPORARY|TEMP)\s+)?TABLE\s+"
    rf"(?P<if_not_exists>IF\s+NOT\s+EXISTS\s+)?(?P<table>{_QUALIFIED})\s*\(",
    _FLAGS,
)
_ALTER_TABLE = re.compile(
    rf"^\s*ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?P<table>{_QUALIFIED})\s+", _FLAGS
)
_END = r"\s*;?\s*$"
_KEY_KIND = r"(?P<kind>PRIMARY\s+KEY|UNIQUE|FOREIGN\s+KEY)"
# Table constraints: [CONSTRAINT name] PRIMARY KEY (..) | UNIQUE (..) | FOREIGN KEY (..) ...
_TABLE_KEY = re.compile(
    rf"^\s*(?:CONSTRAINT\s+(?P<name>{_NAME})\s+)?{_KEY_KIND}\s*"
    r"\((?P<columns>[^()]*)\)(?P<rest>.*?)\s*$",
    _FLAGS,
)
_REFERENCES = re.compile(
    rf"^\s*REFERENCES\s+(?P<table>{_QUALIFIED})(?:\s*\((?P<columns>[^()]*)\))?\s*$", _FLAGS
)
# Column constraints: [CONSTRAINT name] PRIMARY KEY | UNIQUE | REFERENCES reftable [(col)]
_COLUMN_KEY = re.compile(
    rf"(?:\bCONSTRAINT\s+(?P<name>{_NAME})\s+)?"
    r"(?P<kind>\bPRIMARY\s+KEY\b|\bUNIQUE\b|\bREFERENCES\b"
    rf"\s+(?P<table>{_QUALIFIED})(?:\s*\((?P<columns>[^()]*)\))?)",
    _FLAGS,
)
_ENCODE = re.compile(r"\bENCODE\s+(?P<encoding>[A-Za-z_]\w*)", _FLAGS)
_LIKE = re.compile(
    rf"^\s*LIKE\s+(?P<parent>{_QUALIFIED})(?:\s+(?:INCLUDING|EXCLUDING)\s+DEFAULTS)?\s*$", _FLAGS
)
_NOT_A_COLUMN = re.compile(r"^\s*(?:CONSTRAINT|CHECK|PRIMARY|UNIQUE|FOREIGN|LIKE)\b", _FLAGS)
_COLUMN = re.compile(rf"^\s*(?P<name>{_NAME})(?P<rest>\s.*)$", _FLAGS)
_NOT_NULL = re.compile(r"\bNOT\s+NULL\b", _FLAGS)
_ADD_KEY = re.compile(
    rf"^ADD\s+(?:CONSTRAINT\s+(?P<name>{_NAME})\s+)?{_KEY_KIND}\s*"
    rf"\((?P<columns>[^()]*)\)(?P<rest>.*?){_END}",
    _FLAGS,
)
_ADD_COLUMN = re.compile(
    r"^ADD\s+(?:COLUMN\s+|(?!(?:CONSTRAINT|PRIMARY|UNIQUE|FOREIGN|CHECK)\b))"
    rf"(?:IF\s+NOT\s+EXISTS\s+)?(?P<name>{_NAME})(?P<rest>\s.*?){_END}",
    _FLAGS,
)
_DROP_CONSTRAINT = re.compile(
    rf"^DROP\s+CONSTRAINT\s+(?P<name>{_NAME})(?:\s+(?:RESTRICT|CASCADE))?{_END}", _FLAGS
)
_ALTER_COLUMN_TYPE = re.compile(
    rf"^ALTER\s+(?:COLUMN\s+)?(?P<name>{_NAME})\s+(?:SET\s+DATA\s+)?TYPE\b", _FLAGS
)
_ENCODE_ITEM = rf"ALTER\s+(?:COLUMN\s+)?(?P<name>{_NAME})\s+ENCODE\s+(?P<encoding>[A-Za-z_]\w*)"
_ALTER_ENCODE = re.compile(
    rf"^{_ENCODE_ITEM}(?:\s*,\s*{_ENCODE_ITEM.replace('?P<', '?P<_')})*{_END}", _FLAGS
)


@dataclass
class TableDdl:
    """A CREATE/ALTER TABLE whose keys and encodings the stand-in keeps as metadata."""

    action: str  # create | add_column | add_key | drop_constraint | alter_type | alter_encode
    table: str  # as written, quoted names folded: for to_regclass()
    relname: str  # the table's own name as PostgreSQL resolves it (messages, key names)
    sql: str | None  # what PostgreSQL runs (keys stripped); None: metadata only
    keys: list[DeclaredKey] = field(default_factory=list)
    encodings: dict[str, str] = field(default_factory=dict)  # column -> ENCODE
    column: str | None = None  # alter_type: the column
    constraint: str | None = None  # drop_constraint: the name
    like: str | None = None  # create: the LIKE parent, as written
    if_not_exists: bool = False


def _name(token: str, kept: list[str]) -> str:
    """A name as PostgreSQL resolves it: quoted as folded, unquoted in lower case."""
    token = token.strip()
    sentinel = _SENTINEL.fullmatch(token)
    if sentinel:
        return kept[int(sentinel.group(1))][1:-1].replace('""', '"')
    return token.translate(_ASCII_LOWER)


def _names(listed: str, kept: list[str]) -> tuple[str, ...]:
    parts = listed.split(",")
    if not all(re.fullmatch(rf"\s*{_NAME}\s*", p) for p in parts):
        raise SqlTranslationError(f"syntax error in column list ({_unmask(listed, kept)})")
    return tuple(_name(p, kept) for p in parts)


def _references(match: re.Match[str], kept: list[str]) -> str:
    columns = f" ({', '.join(_names(match['columns'], kept))})" if match["columns"] else ""
    return _unmask(match["table"], kept) + columns


def _table_key(match: re.Match[str], kept: list[str]) -> DeclaredKey:
    """A table constraint; Redshift's grammar has nothing after it but REFERENCES."""
    kind = " ".join(match["kind"].upper().split())
    rest = match["rest"]
    references = None
    if kind == FOREIGN_KEY:
        target = _REFERENCES.match(rest)
        if target is None:
            raise SqlTranslationError(
                f"syntax error at or near {_unmask(rest, kept).strip()[:40]!r}: Redshift's "
                "FOREIGN KEY takes REFERENCES reftable [ ( refcolumn ) ] and nothing else"
            )
        references = _references(target, kept)
    elif rest.strip():
        raise SqlTranslationError(
            f"syntax error at or near {_unmask(rest, kept).strip()[:40]!r} (after {kind})"
        )
    name = _name(match["name"], kept) if match["name"] else None
    return DeclaredKey(kind, _names(match["columns"], kept), name, references)


def _column_keys(column: str, rest: str, kept: list[str]) -> list[DeclaredKey]:
    keys = []
    for match in _COLUMN_KEY.finditer(rest):
        word = match["kind"].split()[0].upper()  # PRIMARY, UNIQUE or REFERENCES
        name = _name(match["name"], kept) if match["name"] else None
        if word == "REFERENCES":
            keys.append(DeclaredKey(FOREIGN_KEY, (column,), name, _references(match, kept)))
        else:
            keys.append(DeclaredKey(PRIMARY_KEY if word == "PRIMARY" else UNIQUE, (column,), name))
    return keys


def _split_top_level(text: str) -> list[str]:
    """Split at the commas outside parentheses (literals are masked already)."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def _closing_paren(text: str, opening: int) -> int | None:
    depth = 0
    for index in range(opening, len(text)):
        if text[index] == "(":
            depth += 1
        elif text[index] == ")":
            depth -= 1
            if depth == 0:
                return index
    return None


def _plan_create(text: str, kept: list[str], match: re.Match[str]) -> TableDdl | None:
    opening = match.end() - 1
    closing = _closing_paren(text, opening)
    if closing is None or re.match(r"\s*AS\b", text[closing + 1 :], _FLAGS):
        return None  # PostgreSQL reports the syntax error; CREATE TABLE t (a, b) AS ... has no keys
    table = _unmask(match["table"], kept)
    plan = TableDdl(
        "create",
        table,
        _name(re.split(r"\s*\.\s*", match["table"])[-1], kept),
        None,
        if_not_exists=bool(match["if_not_exists"]),
    )
    elements: list[str] = []
    columns: dict[str, int] = {}  # column -> its index in elements
    for element in _split_top_level(text[opening + 1 : closing]):
        if (like := _LIKE.match(element)) is not None:
            plan.like = _unmask(like["parent"], kept)
        elif (key := _TABLE_KEY.match(element)) is not None:
            plan.keys.append(_table_key(key, kept))
            continue  # declared, not enforced: PostgreSQL never sees it
        elif not _NOT_A_COLUMN.match(element) and (column := _COLUMN.match(element)):
            name = _name(column["name"], kept)
            plan.keys += _column_keys(name, column["rest"], kept)
            if (encoding := _ENCODE.search(column["rest"])) is not None:
                plan.encodings[name] = encoding["encoding"].lower()
            columns[name] = len(elements)
            element = element[: column.end("name")] + _COLUMN_KEY.sub(" ", column["rest"])
        elements.append(element)
    if not (plan.keys or plan.encodings or plan.like):
        return None
    # A primary key implies NOT NULL (PostgreSQL 8, so Redshift; and "You can't add a
    # primary-key constraint to a nullable column", ALTER TABLE): keep that part of it.
    for key in plan.keys:
        for name in key.columns if key.kind == PRIMARY_KEY else ():
            if name in columns and not _NOT_NULL.search(elements[columns[name]]):
                elements[columns[name]] += " NOT NULL"
    plan.sql = _unmask(text[: opening + 1] + ",".join(elements) + text[closing:], kept)
    return plan


def _plan_alter(sql: str, text: str, kept: list[str], match: re.Match[str]) -> TableDdl | None:
    table = _unmask(match["table"], kept)
    relname = _name(re.split(r"\s*\.\s*", match["table"])[-1], kept)
    action = text[match.end() :]
    if (key := _ADD_KEY.match(action)) is not None:
        return TableDdl("add_key", table, relname, None, keys=[_table_key(key, kept)])
    if (added := _ADD_COLUMN.match(action)) is not None:
        name = _name(added["name"], kept)
        # Redshift's ADD COLUMN grammar has DEFAULT, ENCODE, NOT NULL | NULL, COLLATE; the
        # first message is Redshift's own (django-redshift-backend PR #134), the second
        # follows it (an assumption: the grammar has no REFERENCES there either).
        kinds = {key.kind for key in _column_keys(name, added["rest"], kept)}
        if kinds - {FOREIGN_KEY}:
            raise SqlTranslationError(
                "ALTER TABLE ADD COLUMN does not support columns defined with UNIQUE or "
                "PRIMARY KEY constraints"
            )
        if kinds:
            raise SqlTranslationError(
                "ALTER TABLE ADD COLUMN does not support columns defined with REFERENCES "
                "(FOREIGN KEY) constraints"
            )
        encoding = _ENCODE.search(added["rest"])
        if encoding is None:
            return None
        return TableDdl(
            "add_column", table, relname, sql, encodings={name: encoding["encoding"].lower()}
        )
    if (dropped := _DROP_CONSTRAINT.match(action)) is not None:
        name = _name(dropped["name"], kept)
        return TableDdl("drop_constraint", table, relname, sql, constraint=name)
    if (altered := _ALTER_COLUMN_TYPE.match(action)) is not None:
        return TableDdl("alter_type", table, relname, sql, column=_name(altered["name"], kept))
    if _ALTER_ENCODE.match(action):
        encodings = {
            _name(item["name"], kept): item["encoding"].lower()
            for item in re.finditer(_ENCODE_ITEM, action, _FLAGS)
        }
        return TableDdl("alter_encode", table, relname, None, encodings=encodings)
    return None


def plan_table_ddl(sql: str) -> TableDdl | None:
    """How the stand-in runs a CREATE/ALTER TABLE that declares keys or encodings.

    None for any other statement (it runs as it is, after `translate_sql`). For CREATE
    TABLE the plan's `sql` has no PRIMARY KEY / UNIQUE / REFERENCES / FOREIGN KEY left
    (a PRIMARY KEY column gets NOT NULL instead), and its keys and ENCODE settings are
    listed to be recorded once PostgreSQL has created the table. ALTER TABLE ... ADD key
    and ... ALTER COLUMN c ENCODE e only change that record. Raises SqlTranslationError
    where Redshift's grammar has no room for the clause (ADD COLUMN ... PRIMARY KEY).
    """
    text, kept = _masked(sql)
    if (created := _CREATE_TABLE.match(text)) is not None:
        return _plan_create(text, kept, created)
    if (altered := _ALTER_TABLE.match(text)) is not None:
        return _plan_alter(sql, text, kept, altered)
    return None


# --- COPY parsing -------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
      (?P<ws>\s+|--[^\n]*|/\*.*?\*/)
    | (?P<str>'(?:[^']|'')*')
    | (?P<qid>"(?:[^"]|"")*")
    | (?P<word>[A-Za-z_][\w$]*)
    | (?P<num>\d+(?:\.\d+)?)
    | (?P<punct>.)
    """,
    re.S | re.X,
)


@dataclass(frozen=True)
class _Token:
    kind: str  # str | qid | word | num | punct
    text: str  # raw text as written

    @property
    def value(self) -> str:
        """A literal's or quoted identifier's content; a word upper-cased."""
        if self.kind == "str":
            return self.text[1:-1].replace("''", "'")
        if self.kind == "qid":
            return self.text[1:-1].replace('""', '"')
        return self.text.upper() if self.kind == "word" else self.text


def _tokens(sql: str) -> list[_Token]:
    return [
        _Token(m.lastgroup or "punct", m.group(0))
        for m in _TOKEN.finditer(sql)
        if m.lastgroup != "ws"
    ]


_LEADING_NOISE = re.compile(r"(?:\s+|--[^\n]*|/\*.*?\*/)*", re.S)
_COPY_KEYWORD = re.compile(r"COPY\b", re.I)


def is_copy(sql: str) -> bool:
    """True when the statement is a COPY (intercepted, never sent to PostgreSQL)."""
    start = _LEADING_NOISE.match(sql)
    return bool(_COPY_KEYWORD.match(sql, start.end() if start else 0))


@dataclass
class CopySpec:
    """A parsed Redshift COPY statement."""

    table: str  # as written (quoted parts kept), for to_regclass
    columns: list[str] | None
    source: str
    format: str | None = None
    manifest: bool = False
    explicit_ids: bool = False
    fillrecord: bool = False
    authorized: bool = False
    # IAM_ROLE 'arn' (None: IAM_ROLE default, or credentials of another kind)
    iam_role: str | None = None
    refused: list[str] = field(default_factory=list)


def parse_copy(sql: str) -> CopySpec:
    """Parse `COPY table [(cols)] FROM 's3://...' options...`; raise _CopyError if malformed."""
    tokens = _tokens(sql)
    while tokens and tokens[-1].text == ";":
        tokens.pop()
    pos = 0

    def peek(offset: int = 0) -> _Token | None:
        return tokens[pos + offset] if pos + offset < len(tokens) else None

    def syntax_error() -> _CopyError:
        near = peek()
        where = f'at or near "{near.text}"' if near else "at end of input"
        return _CopyError(f"syntax error {where}")

    def take_identifier() -> tuple[str, str]:
        nonlocal pos
        token = peek()
        if token is None or token.kind not in ("word", "qid"):
            raise syntax_error()
        pos += 1
        # Names fold to lower case in Redshift, quoted ones too (ASCII letters).
        try:
            if token.kind == "qid":
                folded = fold_quoted_identifier(token.text)
                return folded, folded[1:-1].replace('""', '"')
            check_identifier(token.text)
        except SqlTranslationError as exc:
            raise _CopyError(str(exc)) from None
        return token.text, token.text.lower()

    pos = 1  # past COPY
    parts = [take_identifier()[0]]
    while (token := peek()) is not None and token.text == ".":
        pos += 1
        parts.append(take_identifier()[0])
    columns: list[str] | None = None
    if (token := peek()) is not None and token.text == "(":
        pos += 1
        columns = [take_identifier()[1]]
        while (token := peek()) is not None and token.text == ",":
            pos += 1
            columns.append(take_identifier()[1])
        if (token := peek()) is None or token.text != ")":
            raise syntax_error()
        pos += 1
    if (token := peek()) is None or token.value != "FROM":
        raise syntax_error()
    pos += 1
    if (token := peek()) is None or token.kind != "str":
        raise syntax_error()
    spec = CopySpec(table=".".join(parts), columns=columns, source=token.value)
    pos += 1
    while (token := peek()) is not None:
        if token.kind != "word":
            raise syntax_error()
        option = token.value
        pos += 1
        if (nxt := peek()) is not None and nxt.value == "AS" and nxt.kind == "word":
            pos += 1
        if option == "FORMAT":
            if (nxt := peek()) is None or nxt.kind != "word":
                raise syntax_error()
            spec.format = nxt.value
            pos += 1
        elif option in _FORMAT_NAMES:
            spec.format = option
        elif option in _AUTH_OPTIONS:
            if (nxt := peek()) is None or not (
                nxt.kind == "str" or (option == "IAM_ROLE" and nxt.value == "DEFAULT")
            ):
                raise syntax_error()
            spec.authorized = True
            if option == "IAM_ROLE" and nxt.kind == "str":
                spec.iam_role = nxt.value
            pos += 1
        elif option == "MANIFEST":
            spec.manifest = True
        elif option == "EXPLICIT_IDS":
            spec.explicit_ids = True
        elif option == "FILLRECORD":
            spec.fillrecord = True
        elif option in _PARQUET_COPY_OPTIONS:
            # ACCEPTINVCHARS ['c'], STATUPDATE [ON|OFF|TRUE|FALSE]: accepted, no effect here.
            if (nxt := peek()) is not None and (
                nxt.kind == "str" or nxt.value in ("ON", "OFF", "TRUE", "FALSE")
            ):
                pos += 1
        else:
            spec.refused.append(option)
            # Skip the option's arguments (literals, numbers, ON/OFF...).
            while (nxt := peek()) is not None and (
                nxt.kind in ("str", "num") or nxt.value in ("ON", "OFF", "TRUE", "FALSE")
            ):
                pos += 1
    return spec


# --- Parquet type rules -------------------------------------------------------------------


@dataclass(frozen=True)
class _TableColumn:
    name: str
    type_oid: int
    formatted: str  # format_type(): 'character varying(5)', 'numeric(20,2)', ...
    identity: bool
    generated: bool


_PG_TO_REDSHIFT = {
    "smallint": "SMALLINT",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "real": "REAL",
    "double precision": "DOUBLE PRECISION",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp without time zone": "TIMESTAMP",
    "timestamp with time zone": "TIMESTAMPTZ",
    "text": "TEXT",
    "bytea": "VARBYTE",
    "jsonb": "SUPER",
}


def _redshift_type(formatted: str) -> str:
    """PostgreSQL format_type() text -> the type's Redshift name, for error messages."""
    if formatted in _PG_TO_REDSHIFT:
        return _PG_TO_REDSHIFT[formatted]
    for prefix, name in (("character varying", "VARCHAR"), ("character", "CHAR")):
        if formatted.startswith(prefix):
            return name + formatted[len(prefix) :]
    return formatted.upper()


def _length_limit(formatted: str) -> int | None:
    match = re.fullmatch(r"character(?: varying)?\((\d+)\)", formatted)
    return int(match.group(1)) if match else None


def _parquet_kind(column: Any) -> tuple[Any, ...]:
    """Classify a Parquet leaf column: ('int', 16), ('decimal', p, s), ('timestamp', unit)..."""
    physical = column.physical_type
    logical = json.loads(column.logical_type.to_json())
    ltype = logical.get("Type", "None")
    if ltype == "Decimal":
        return ("decimal", logical["precision"], logical["scale"])
    if physical == "BOOLEAN":
        return ("bool",)
    if physical in ("INT32", "INT64"):
        if ltype == "Int":
            bits, signed = int(logical["bitWidth"]), bool(logical["isSigned"])
            if not signed:
                bits *= 2  # an unsigned value needs the next wider signed type
            return ("int", bits) if bits <= 64 else ("unsupported",)
        if ltype == "Date":
            return ("date",)
        if ltype == "Timestamp":
            return ("timestamp", logical.get("timeUnit", ""))
        if ltype == "None":
            return ("int", 32 if physical == "INT32" else 64)
        return ("unsupported",)
    if physical == "INT96":
        return ("timestamp", "int96")  # legacy Spark/Impala timestamps, Redshift reads them
    if physical == "FLOAT":
        return ("float", 32)
    if physical == "DOUBLE":
        return ("float", 64)
    if physical == "BYTE_ARRAY":
        if ltype in ("String", "Enum", "JSON") or column.converted_type == "UTF8":
            return ("string",)
        return ("binary",)
    if physical == "FIXED_LEN_BYTE_ARRAY":
        return ("binary",)
    return ("unsupported",)


_UNITS = {"milliseconds": "MILLIS", "microseconds": "MICROS", "nanoseconds": "NANOS"}


def _parquet_description(column: Any) -> str:
    """A Parquet column as parquet-mr prints it: `optional int32 a (INTEGER(16,true))`."""
    repetition = "required" if column.max_definition_level == 0 else "optional"
    physical = column.physical_type.lower()
    if physical == "byte_array":
        physical = "binary"
    elif physical == "fixed_len_byte_array":
        physical = f"fixed_len_byte_array({column.length})"
    logical = json.loads(column.logical_type.to_json())
    ltype = logical.get("Type", "None")
    annotation = {
        "Int": lambda: f"INTEGER({logical.get('bitWidth')},{str(logical.get('isSigned')).lower()})",
        "Decimal": lambda: f"DECIMAL({logical.get('precision')},{logical.get('scale')})",
        "Timestamp": lambda: (
            f"TIMESTAMP({_UNITS.get(logical.get('timeUnit'), '?')},"
            f"{str(logical.get('isAdjustedToUTC')).lower()})"
        ),
        "Time": lambda: f"TIME({_UNITS.get(logical.get('timeUnit'), '?')})",
    }.get(ltype, lambda: ltype.upper() if ltype != "None" else "")()
    text = f"{repetition} {physical} {column.name}"
    return f"{text} ({annotation})" if annotation else text


def _compatible(kind: tuple[Any, ...], column: _TableColumn) -> bool:
    """Redshift's rule for loading this Parquet column into this table column."""
    target = column.formatted
    tag = kind[0]
    if tag == "int":
        bits = kind[1]
        allowed = {"bigint"} | ({"integer"} if bits <= 32 else set())
        return target in allowed | ({"smallint"} if bits <= 16 else set())
    if tag == "decimal":
        return target == f"numeric({kind[1]},{kind[2]})"
    if tag == "float":
        return target == ("real" if kind[1] == 32 else "double precision")
    if tag == "bool":
        return target == "boolean"
    if tag == "date":
        return target == "date"
    if tag == "timestamp":
        # Nanosecond timestamps (pyarrow's default for pandas data) are refused.
        return kind[1] in ("milliseconds", "microseconds", "int96") and target in (
            "timestamp without time zone",
            "timestamp with time zone",
        )
    if tag == "string":
        return target == "text" or target == "jsonb" or _length_limit(target) is not None
    if tag == "binary":
        return target == "bytea"
    return False


# --- statements ---------------------------------------------------------------------------


@dataclass
class _Sub:
    id: str
    sql: str
    status: str = SUBMITTED
    error: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    started: float | None = None
    ended: float | None = None
    result_rows: int = -1
    result_size: int = 0
    has_result_set: bool = False
    columns: list[dict[str, Any]] | None = None
    records: list[list[dict[str, Any]]] | None = None
    query_id: int = 0

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Id": self.id,
            "Status": self.status,
            "QueryString": redact_sql(self.sql),
            "CreatedAt": self.created_at,
            "UpdatedAt": self.updated_at,
            "Duration": _duration_ns(self.started, self.ended),
            "HasResultSet": self.has_result_set,
            "ResultRows": self.result_rows,
            "ResultSize": self.result_size,
            "RedshiftQueryId": self.query_id,
        }
        if self.error is not None:
            out["Error"] = self.error
        return out


@dataclass
class _Statement:
    id: str
    is_batch: bool
    subs: list[_Sub]
    database: str
    target: dict[str, str]  # ClusterIdentifier or WorkgroupName (echoed back)
    db_user: str | None
    statement_name: str | None
    parameters: list[dict[str, Any]] | None
    transaction: bool  # batch ExecutionMode TRANSACTION (default) vs AUTO_COMMIT
    created_at: float
    # The PostgreSQL role of the database user it runs as; None: the DSN's superuser
    # (`run_as_admin` only).
    db_role: str | None
    status: str = SUBMITTED
    error: str | None = None
    updated_at: float = 0.0
    started: float | None = None
    ended: float | None = None
    pid: int = -1
    cancel_requested: bool = False
    connection: psycopg.Connection[Any] | None = None
    owner: str | None = None  # the identity that ran it (an IAM role or user ARN)
    # (tables written or read, own transaction id) just before COMMIT: a serialization
    # failure at COMMIT names them (`_isolation_violation`).
    locks: tuple[list[int], str | None] | None = None

    def common(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Database": self.database, **self.target}
        if self.db_user:
            out["DbUser"] = self.db_user
        return out


def _duration_ns(started: float | None, ended: float | None) -> int:
    if started is None or ended is None:
        return -1
    return int((ended - started) * 1_000_000_000)


def _pg_error_text(error: psycopg.Error) -> str:
    """The database's error as the Data API shows it: `ERROR: message` (+ detail)."""
    diag = error.diag
    text = f"ERROR: {diag.message_primary or str(error).strip()}"
    if diag.message_detail:
        text += f"\n  Detail: {diag.message_detail}"
    return text


# PostgreSQL 15 names the kind of object; Redshift (from PostgreSQL 8.0) says "relation":
# "permission denied for relation t", "must be owner of relation t".
_RELATION_KIND = re.compile(
    r"^ERROR: (permission denied for|must be owner of) "
    r"(?:table|view|materialized view|sequence|foreign table) "
)
_DATABASE_DENIED = re.compile(r"^ERROR: permission denied for database \S+")


def redshift_error_text(error: psycopg.Error, database: str) -> str:
    """A PostgreSQL error as Redshift words it; `database` is the Data API's Database."""
    text = _RELATION_KIND.sub(r"ERROR: \1 relation ", _pg_error_text(error))
    # The stand-in's database has a name of its own; the caller asked for `database`.
    return _DATABASE_DENIED.sub(f"ERROR: permission denied for database {database}", text)


# Serializable isolation violation, as Redshift reports it ("Troubleshooting serializable
# isolation errors", https://docs.aws.amazon.com/redshift/latest/dg/
# c_serial_isolation-serializable-isolation-troubleshooting.html; the table id, the cycle's
# transactions and the pid as public reports of the error show them).
_ISOLATION_VIOLATION = (
    "ERROR: 1023 DETAIL: Serializable isolation violation on table - {table}, "
    "transactions forming the cycle are: {xids} (pid:{pid})"
)
_SERIALIZATION_ERRORS = (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected)
# The user tables a backend holds locks on, written ones first, and its transaction id.
_LOCKED_TABLES = """
    SELECT l.relation::int FROM pg_locks l
    JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE l.pid = %s AND l.locktype = 'relation' AND c.relkind IN ('r', 'p')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'myshift_standin')
    GROUP BY l.relation ORDER BY bool_or(l.mode = 'RowExclusiveLock') DESC, 1
"""
_OWN_XID = """
    SELECT min(transactionid::text::bigint)::text FROM pg_locks
    WHERE pid = %s AND locktype = 'transactionid' AND mode = 'ExclusiveLock'
"""
_OTHER_XIDS = """
    SELECT DISTINCT t.transactionid::text FROM pg_locks r
    JOIN pg_locks t ON t.pid = r.pid AND t.locktype = 'transactionid' AND t.mode = 'ExclusiveLock'
    WHERE r.locktype = 'relation' AND r.relation = %s AND r.pid <> %s ORDER BY 1
"""


def _locks_of(connection: psycopg.Connection[Any], pid: int) -> tuple[list[int], str | None]:
    """(user tables backend `pid` has locked, written first; its transaction id)."""
    tables = [row[0] for row in connection.execute(_LOCKED_TABLES, [pid])]
    xid = connection.execute(_OWN_XID, [pid]).fetchone()
    return tables, (xid[0] if xid else None)


# What would let a statement leave its database user: SET SESSION AUTHORIZATION is for
# superusers in Redshift and PostgreSQL, and the stand-in's sessions start as one.
_IDENTITY_SWITCH = re.compile(
    r"(?:^|;)\s*(?:(?:SET|RESET)\s+(?:(?:SESSION|LOCAL)\s+)?SESSION\s+AUTHORIZATION"
    r"|DISCARD\s+ALL)\b",
    _FLAGS,
)


def _refuse_identity_switch(sql: str) -> None:
    """SqlTranslationError for SQL that would make the session another user.

    A guard, not a parser: any mention of the session_authorization setting (such as
    set_config('session_authorization', ...)) is refused too.
    """
    if _IDENTITY_SWITCH.search(_mask(sql)[0]) or "session_authorization" in sql.lower():
        raise SqlTranslationError("permission denied to set session authorization")


# --- result values ------------------------------------------------------------------------

_TYPE_NAMES = {"jsonb": "super", "bytea": "varbyte"}  # as Redshift names them
_SIGNED_TYPES = frozenset({"int2", "int4", "int8", "numeric", "float4", "float8"})


def _field(value: Any) -> dict[str, Any]:
    """One value as a Data API `Field`."""
    if value is None:
        return {"isNull": True}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"longValue": value}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, decimal.Decimal):
        return {"stringValue": str(value)}
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            utc = value.astimezone(dt.UTC).replace(tzinfo=None)
            return {"stringValue": f"{utc.isoformat(sep=' ')}+00"}
        return {"stringValue": value.isoformat(sep=" ")}
    if isinstance(value, dt.date | dt.time):
        return {"stringValue": value.isoformat()}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"blobValue": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict | list):
        return {"stringValue": json.dumps(value, separators=(",", ":"))}
    return {"stringValue": str(value)}


# --- the stand-in -------------------------------------------------------------------------


def ensure_database(dsn: str) -> None:
    """Create the database named in `dsn` (UTF-8) if it does not exist yet."""
    params = conninfo_to_dict(dsn)
    name = params.get("dbname")
    if not name:
        raise ValueError("the warehouse DSN must name a database")
    admin = make_conninfo(dsn, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return
        try:
            conn.execute(
                pgsql.SQL("CREATE DATABASE {} ENCODING 'UTF8' TEMPLATE template0").format(
                    pgsql.Identifier(str(name))
                )
            )
        except psycopg.errors.DuplicateDatabase:
            pass  # created concurrently


class StandInAdminError(Exception):
    """A statement run with `RedshiftDataStandIn.run_as_admin` failed (its error text)."""


# Redshift functions PostgreSQL lacks, created in every stand-in database as PostgreSQL
# functions computing what the Redshift documentation says (myshift.checksum uses them).
#
# STRTOL(num_string, base) -> BIGINT: leading white space, one optional sign, '0x' when
# base is 16; digits up to the first one not of the base; an empty string is 0; the value
# must be within the signed 64-bit range (else an error); NULL gives NULL.
# https://docs.aws.amazon.com/redshift/latest/dg/r_STRTOL.html
# SHA2(string, bits) -> VARCHAR: the hex digest of the string's UTF-8 bytes; bits 0 (as
# 256), 224, 256, 384 or 512, any other gives an empty string.
# https://docs.aws.amazon.com/redshift/latest/dg/SHA2.html
# TO_HEX(VARBYTE) -> VARCHAR: the value's bytes as (lowercase) hex digits; PostgreSQL's
# own to_hex takes only integers, which it keeps.
# https://docs.aws.amazon.com/redshift/latest/dg/r_TO_HEX.html
_REDSHIFT_FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION public.strtol(num_string text, base integer) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $strtol$
DECLARE
    s text := ltrim(num_string, E' \t\n\r\f' || chr(11));  -- chr(11): vertical tab
    negative boolean := false;
    total numeric := 0;
    digit integer;
    position integer := 1;
BEGIN
    IF base < 2 OR base > 36 THEN
        RAISE EXCEPTION 'STRTOL base must be between 2 and 36, not %', base;
    END IF;
    IF left(s, 1) IN ('+', '-') THEN
        negative := left(s, 1) = '-';
        s := substr(s, 2);
    END IF;
    IF base = 16 AND lower(left(s, 2)) = '0x' THEN
        s := substr(s, 3);
    END IF;
    -- The common case, up to 15 hex digits (60 bits), without a loop.
    IF base = 16 AND s ~ '^[0-9A-Fa-f]{1,15}$' THEN
        total := (('x' || lpad(s, 16, '0'))::bit(64))::bigint;
    ELSE
        WHILE position <= length(s) LOOP
            digit := strpos('0123456789abcdefghijklmnopqrstuvwxyz',
                            lower(substr(s, position, 1))) - 1;
            EXIT WHEN digit < 0 OR digit >= base;
            total := total * base + digit;
            IF total > 9223372036854775808 THEN
                RAISE EXCEPTION 'STRTOL: % is out of the signed 64-bit range', num_string;
            END IF;
            position := position + 1;
        END LOOP;
    END IF;
    IF negative THEN
        total := -total;
    END IF;
    IF total > 9223372036854775807 THEN
        RAISE EXCEPTION 'STRTOL: % is out of the signed 64-bit range', num_string;
    END IF;
    RETURN total::bigint;
END
$strtol$;
CREATE OR REPLACE FUNCTION public.sha2(value text, bits integer) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $sha2$
SELECT CASE bits
    WHEN 0 THEN encode(sha256(convert_to(value, 'UTF8')), 'hex')
    WHEN 224 THEN encode(sha224(convert_to(value, 'UTF8')), 'hex')
    WHEN 256 THEN encode(sha256(convert_to(value, 'UTF8')), 'hex')
    WHEN 384 THEN encode(sha384(convert_to(value, 'UTF8')), 'hex')
    WHEN 512 THEN encode(sha512(convert_to(value, 'UTF8')), 'hex')
    ELSE ''
END
$sha2$;
CREATE OR REPLACE FUNCTION public.to_hex(value bytea) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $to_hex$ SELECT encode(value, 'hex') $to_hex$;
"""


def ensure_functions(dsn: str) -> None:
    """Create the Redshift functions PostgreSQL lacks (`_REDSHIFT_FUNCTIONS`) in `dsn`."""
    with psycopg.connect(dsn) as conn, conn.transaction():
        # Two stand-ins starting at once on one database would collide replacing them.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('myshift_standin_functions'))")
        conn.execute(_REDSHIFT_FUNCTIONS)


class RedshiftDataStandIn:
    """The Redshift Data API on PostgreSQL: asynchronous statements, one session per call.

    Each call runs as the database user the Data API would use (`database_user`): a
    PostgreSQL role of that name, created on first use with no privileges beyond
    PUBLIC's, which the session takes on with SET SESSION AUTHORIZATION, so PostgreSQL
    checks that role's privileges on everything the statement touches (COPY included).
    The DSN's superuser only keeps the stand-in's own records and runs `run_as_admin`.
    Every transaction is SERIALIZABLE, the isolation of a provisioned cluster ("Isolation
    levels in Amazon Redshift", https://docs.aws.amazon.com/redshift/latest/dg/
    c_serial_isolation.html; Serverless defaults to SNAPSHOT, the looser one).
    """

    def __init__(
        self,
        dsn: str,
        s3_client_factory: Callable[[], Any],
        workers: int = 4,
        *,
        result_page_rows: int = 1000,
        max_statements: int = 10_000,
        copy_role_s3: Callable[[str | None], Any] | None = None,
    ) -> None:
        """`copy_role_s3(role)`: an S3 client acting as the COPY's IAM role (None: the
        warehouse's default role), raising when Redshift could not assume it; without
        it, COPY reads with `s3_client_factory()`."""
        ensure_database(dsn)
        ensure_functions(dsn)
        self._dsn = dsn
        self._s3_client_factory = s3_client_factory
        self._copy_role_s3 = copy_role_s3
        self._page_rows = result_page_rows
        self._max_statements = max_statements
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="redshift-standin")
        self._lock = threading.Lock()
        self._statements: dict[str, _Statement] = {}
        self._client_tokens: dict[str, str] = {}
        self._query_ids = iter(range(100_000, 10**12))
        self._prepared: set[str] = set()  # DSNs whose database has the stand-in's schema
        self._roles: set[str] = set()  # roles known to exist (roles are cluster-wide)

    # --- API ---------------------------------------------------------------------------

    def execute_statement(self, params: dict[str, Any]) -> dict[str, Any]:
        """ExecuteStatement: one statement, run asynchronously."""
        sql = params.get("Sql")
        if not isinstance(sql, str) or not sql.strip():
            raise StandInValidationError("Sql must be a non-empty SQL statement")
        return self._submit(params, [sql], is_batch=False)

    def batch_execute_statement(self, params: dict[str, Any]) -> dict[str, Any]:
        """BatchExecuteStatement: 1..40 statements, one transaction (all or nothing)."""
        sqls = params.get("Sqls")
        if not isinstance(sqls, list) or not sqls:
            raise StandInValidationError(
                "1 validation error detected: Value at 'sqls' failed to satisfy constraint: "
                "Member must have length greater than or equal to 1"
            )
        if len(sqls) > MAX_BATCH_STATEMENTS:
            raise StandInValidationError(
                "1 validation error detected: Value at 'sqls' failed to satisfy constraint: "
                f"Member must have length less than or equal to {MAX_BATCH_STATEMENTS}"
            )
        if not all(isinstance(s, str) and s.strip() for s in sqls):
            raise StandInValidationError("every entry of Sqls must be a non-empty SQL statement")
        return self._submit(params, list(sqls), is_batch=True)

    @property
    def dsn(self) -> str:
        """The PostgreSQL database statements run in."""
        return self._dsn

    @dsn.setter
    def dsn(self, value: str) -> None:
        # Another database of the same server: it needs the Redshift functions too.
        ensure_database(value)
        ensure_functions(value)
        self._dsn = value

    def run_as_admin(self, sql: str | Sequence[str]) -> None:
        """Run DBA statements (CREATE SCHEMA, GRANT ...) as the DSN's superuser, now.

        Redshift SQL, translated as every statement is (quoted names fold, so
        `GRANT ... TO "IAMR:Loader"` reaches the role a call as that identity runs as);
        several statements run as one transaction. Raises StandInAdminError with the
        statement's error if it fails.
        """
        sqls = [sql] if isinstance(sql, str) else list(sql)
        now = time.time()
        statement_id = str(uuid.uuid4())
        statement = _Statement(
            id=statement_id,
            is_batch=len(sqls) > 1,
            subs=[
                _Sub(id=f"{statement_id}:{n}", sql=text, created_at=now, updated_at=now)
                for n, text in enumerate(sqls, start=1)
            ],
            database="(admin)",
            target={},
            db_user=None,
            statement_name=None,
            parameters=None,
            transaction=True,
            created_at=now,
            db_role=None,
        )
        self._run(statement)
        if statement.status != FINISHED:
            raise StandInAdminError(statement.error or statement.status)

    def describe_statement(self, params: dict[str, Any]) -> dict[str, Any]:
        """DescribeStatement of a statement, a batch, or a sub-statement `<id>:N`."""
        with self._lock:
            statement, sub = self._find(params.get("Id"), params.get(CALLER))
            if sub is not None:
                return {**statement.common(), **sub.describe()}
            return self._describe(statement)

    def get_statement_result(self, params: dict[str, Any]) -> dict[str, Any]:
        """GetStatementResult of a finished statement (or sub-statement) with a result set."""
        with self._lock:
            statement, sub = self._find(params.get("Id"), params.get(CALLER))
            if sub is None:
                if statement.is_batch:
                    raise StandInValidationError(
                        "Query does not have result. A batch statement has no result of its "
                        f"own: use a sub-statement id such as '{statement.id}:1'."
                    )
                sub = statement.subs[0]
            if sub.status != FINISHED or not sub.has_result_set or sub.records is None:
                raise StandInValidationError(
                    "Query does not have result. Please check query status with DescribeStatement."
                )
            records, columns = sub.records, sub.columns or []
        start = self._token_offset(params.get("NextToken"), len(records))
        end = start + self._page_rows
        out: dict[str, Any] = {
            "Records": records[start:end],
            "ColumnMetadata": columns,
            "TotalNumRows": len(records),
        }
        if end < len(records):
            out["NextToken"] = str(end)
        return out

    def cancel_statement(self, params: dict[str, Any]) -> dict[str, Any]:
        """CancelStatement: abort a queued statement, or cancel the running query."""
        with self._lock:
            statement, sub = self._find(params.get("Id"), params.get(CALLER))
            if sub is not None:
                raise StandInValidationError("Cancel the batch statement, not a sub-statement")
            if statement.status in TERMINAL:
                raise StandInValidationError(
                    f"Could not cancel a query that is already in {statement.status} state."
                )
            statement.cancel_requested = True
            if statement.status in (SUBMITTED, PICKED) and statement.connection is None:
                self._terminate(statement, ABORTED, "Query was cancelled by the user.")
                return {"Status": True}
        # PostgreSQL only cancels a query that is running, and the worker may be between
        # two queries: keep signalling until the statement has stopped.
        threading.Thread(target=self._cancel_until_stopped, args=(statement,), daemon=True).start()
        return {"Status": True}

    def _cancel_until_stopped(self, statement: _Statement, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if statement.status in TERMINAL:
                    return
                connection = statement.connection
            if connection is not None:
                try:
                    connection.cancel_safe(timeout=5.0)
                except psycopg.Error:
                    log.warning("cancel of statement %s did not reach PostgreSQL", statement.id)
            time.sleep(0.05)

    def list_statements(self, params: dict[str, Any]) -> dict[str, Any]:
        """ListStatements, newest first, filtered by Status and StatementName prefix."""
        status = params.get("Status") or "ALL"
        prefix = params.get("StatementName")
        limit = int(params.get("MaxResults") or 100)
        caller = params.get(CALLER)
        with self._lock:
            rows = [
                s
                for s in sorted(self._statements.values(), key=lambda s: -s.created_at)
                if (status == "ALL" or s.status == status)
                and (not prefix or (s.statement_name or "").startswith(prefix))
                and (not caller or not s.owner or s.owner == caller)  # the caller's own
            ]
            start = self._token_offset(params.get("NextToken"), len(rows))
            page = [self._list_entry(s) for s in rows[start : start + limit]]
        out: dict[str, Any] = {"Statements": page}
        if start + limit < len(rows):
            out["NextToken"] = str(start + limit)
        return out

    def statements_named(self, prefix: str) -> list[dict[str, Any]]:
        """Every statement whose name starts with `prefix`, whoever ran it: what an
        administrator sees in the warehouse's query history (SYS_QUERY_HISTORY)."""
        with self._lock:
            return [
                {**self._list_entry(s), "Owner": s.owner}
                for s in self._statements.values()
                if (s.statement_name or "").startswith(prefix)
            ]

    def shutdown(self) -> None:
        """Cancel what still runs and stop the workers."""
        with self._lock:
            running = [s for s in self._statements.values() if s.status not in TERMINAL]
        for statement in running:
            try:
                self.cancel_statement({"Id": statement.id})
            except StandInValidationError:
                pass  # finished meanwhile
        self._pool.shutdown(wait=True, cancel_futures=True)

    # --- submission ----------------------------------------------------------------------

    def _submit(self, params: dict[str, Any], sqls: list[str], *, is_batch: bool) -> dict[str, Any]:
        if params.get("SessionId") or params.get("SessionKeepAliveSeconds"):
            raise StandInValidationError(
                "SessionId/SessionKeepAliveSeconds are not supported by the local stand-in: "
                "every call is its own session"
            )
        if (params.get("ResultFormat") or "JSON") != "JSON":
            raise StandInValidationError("the local stand-in only supports ResultFormat JSON")
        if not params.get("Database"):
            raise StandInValidationError("Database is required")
        cluster, workgroup = params.get("ClusterIdentifier"), params.get("WorkgroupName")
        if bool(cluster) == bool(workgroup):
            raise StandInValidationError(
                "Exactly one of ClusterIdentifier or WorkgroupName must be specified"
            )
        if sum(len(s.encode("utf-8")) for s in sqls) > MAX_SQL_BYTES:
            raise StandInValidationError("Cannot process query string larger than 100kB")
        mode = params.get("ExecutionMode") or "TRANSACTION"
        if mode not in ("TRANSACTION", "AUTO_COMMIT"):
            raise StandInValidationError(f"invalid ExecutionMode {mode!r}")
        parameters = params.get("Parameters") or None
        if parameters is not None and not all(
            isinstance(p, dict) and "name" in p and "value" in p for p in parameters
        ):
            raise StandInValidationError("each parameter needs a name and a value")
        try:
            db_role = role_name(database_user(params))
        except DatabaseUserError as exc:
            raise StandInValidationError(str(exc)) from exc

        owner = params.get(CALLER)
        # A token is the caller's own: another identity's same token is another request.
        token = f"{owner}|{params['ClientToken']}" if params.get("ClientToken") else None
        now = time.time()
        statement_id = str(uuid.uuid4())
        with self._lock:
            if token and token in self._client_tokens:
                # Idempotent retry: the same statement again.
                existing = self._statements.get(self._client_tokens[token])
                if existing is not None:
                    return self._submitted(existing)
            subs = [
                _Sub(
                    id=f"{statement_id}:{n}" if is_batch else statement_id,
                    sql=sql,
                    created_at=now,
                    updated_at=now,
                    query_id=next(self._query_ids),
                )
                for n, sql in enumerate(sqls, start=1)
            ]
            statement = _Statement(
                id=statement_id,
                is_batch=is_batch,
                subs=subs,
                database=str(params["Database"]),
                target={"ClusterIdentifier": cluster} if cluster else {"WorkgroupName": workgroup},
                db_user=params.get("DbUser"),
                statement_name=params.get("StatementName"),
                parameters=parameters,
                transaction=mode == "TRANSACTION",
                created_at=now,
                db_role=db_role,
                updated_at=now,
                owner=owner,
            )
            self._statements[statement_id] = statement
            if token:
                self._client_tokens[token] = statement_id
            self._evict()
        log.debug("statement %s submitted (%d SQL)", statement_id, len(sqls))
        self._pool.submit(self._run, statement)
        return self._submitted(statement)

    def _submitted(self, statement: _Statement) -> dict[str, Any]:
        # SecretArn is deliberately not echoed.
        return {"Id": statement.id, "CreatedAt": statement.created_at, **statement.common()}

    def _evict(self) -> None:
        """Forget the oldest finished statements beyond max_statements (memory bound)."""
        excess = len(self._statements) - self._max_statements
        if excess <= 0:
            return
        for statement_id in [s.id for s in self._statements.values() if s.status in TERMINAL][
            :excess
        ]:
            del self._statements[statement_id]

    # --- lookup / rendering ------------------------------------------------------------

    def _find(self, raw_id: Any, caller: str | None = None) -> tuple[_Statement, _Sub | None]:
        """The statement (and sub-statement) of an id, as `caller` may see it.

        Only the identity that ran a statement may act on it ("Considerations when
        calling the Amazon Redshift Data API": another user must assume the runner's
        role). The error another identity gets is not documented; the stand-in answers
        as for an unknown id (ResourceNotFoundException), with a hint.
        """
        if not isinstance(raw_id, str) or not raw_id:
            raise StandInValidationError("Id is required")
        base, _, suffix = raw_id.partition(":")
        statement = self._statements.get(base)
        if statement is None:
            raise StandInNotFoundError(f"Query does not exist: {raw_id}")
        if caller and statement.owner and caller != statement.owner:
            raise StandInNotFoundError(
                f"Query does not exist: {raw_id} (it was run by another identity; the Data "
                "API lets only the identity that ran a statement, or one that assumes its "
                "IAM role, describe it, get its result or cancel it)"
            )
        if not suffix:
            return statement, None
        if not statement.is_batch or not suffix.isdigit():
            raise StandInNotFoundError(f"Query does not exist: {raw_id}")
        index = int(suffix)
        if not 1 <= index <= len(statement.subs):
            raise StandInNotFoundError(f"Query does not exist: {raw_id}")
        return statement, statement.subs[index - 1]

    def _describe(self, statement: _Statement) -> dict[str, Any]:
        out: dict[str, Any] = {
            **statement.common(),
            "Id": statement.id,
            "Status": statement.status,
            "CreatedAt": statement.created_at,
            "UpdatedAt": statement.updated_at,
            "Duration": _duration_ns(statement.started, statement.ended),
            "RedshiftPid": statement.pid,
            "ResultFormat": "JSON",
        }
        if statement.parameters:
            out["QueryParameters"] = statement.parameters
        if statement.is_batch:
            out.update(
                QueryString=";\n".join(redact_sql(s.sql) for s in statement.subs),
                HasResultSet=any(s.has_result_set for s in statement.subs),
                ResultRows=-1,
                ResultSize=-1,
                SubStatements=[s.describe() for s in statement.subs],
                ExecutionMode="TRANSACTION" if statement.transaction else "AUTO_COMMIT",
            )
        else:
            single = statement.subs[0].describe()
            for key in ("QueryString", "HasResultSet", "ResultRows", "ResultSize"):
                out[key] = single[key]
            out["RedshiftQueryId"] = single["RedshiftQueryId"]
        if statement.error is not None:
            out["Error"] = statement.error
        return out

    def _list_entry(self, statement: _Statement) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Id": statement.id,
            "Status": statement.status,
            "CreatedAt": statement.created_at,
            "UpdatedAt": statement.updated_at,
            "IsBatchStatement": statement.is_batch,
            "ResultFormat": "JSON",
        }
        if statement.statement_name:
            out["StatementName"] = statement.statement_name
        if statement.is_batch:
            out["QueryStrings"] = [redact_sql(s.sql) for s in statement.subs]
        else:
            out["QueryString"] = redact_sql(statement.subs[0].sql)
        if statement.parameters:
            out["QueryParameters"] = statement.parameters
        return out

    @staticmethod
    def _token_offset(token: Any, size: int) -> int:
        if not token:
            return 0
        if not str(token).isdigit() or int(token) > size:
            raise StandInValidationError("invalid NextToken")
        return int(token)

    # --- execution -----------------------------------------------------------------------

    def _terminate(self, statement: _Statement, status: str, error: str | None) -> None:
        """Mark a statement terminal; caller holds the lock."""
        now = time.time()
        statement.status, statement.updated_at, statement.ended = status, now, now
        if error is not None:
            statement.error = error
        for sub in statement.subs:
            if sub.status not in TERMINAL:
                # Statements after a failure never ran.
                sub.status, sub.updated_at = ABORTED, now

    def _run(self, statement: _Statement) -> None:
        """Worker: run every SQL of the statement in one fresh PostgreSQL session."""
        with self._lock:
            if statement.status != SUBMITTED:
                return  # cancelled while queued
            statement.status, statement.updated_at = PICKED, time.time()
        try:
            connection = psycopg.connect(
                self._dsn,
                autocommit=True,
                # Redshift sessions are UTC; literals below rely on standard strings;
                # every transaction, a single statement's too, is SERIALIZABLE.
                options="-c TimeZone=UTC -c standard_conforming_strings=on "
                "-c default_transaction_isolation=serializable",
                client_encoding="utf8",
            )
        except psycopg.Error as exc:
            with self._lock:
                self._terminate(statement, FAILED, _pg_error_text(exc))
            return
        try:
            self._prepare(connection)
            if statement.db_role is not None:
                self._become(connection, statement.db_role)
        except (psycopg.Error, SqlTranslationError) as exc:
            connection.close()
            error = _pg_error_text(exc) if isinstance(exc, psycopg.Error) else f"ERROR: {exc}"
            with self._lock:
                self._terminate(statement, FAILED, error)
            return
        failure: tuple[str, str] | None = None
        try:
            with self._lock:
                if statement.cancel_requested:
                    self._terminate(statement, ABORTED, "Query was cancelled by the user.")
                    return
                statement.connection = connection
                statement.pid = connection.info.backend_pid
                statement.status = STARTED
                statement.started = statement.updated_at = time.time()
            failure = self._run_subs(connection, statement)
        finally:
            with self._lock:
                statement.connection = None
                if statement.status not in TERMINAL:
                    if failure is None:
                        self._terminate(statement, FINISHED, None)
                    else:
                        self._terminate(statement, *failure)
            connection.close()
        log.debug("statement %s %s", statement.id, statement.status)

    def _run_subs(
        self, connection: psycopg.Connection[Any], statement: _Statement
    ) -> tuple[str, str] | None:
        """Run the SQL list; return (status, error) of the failure, None on success."""
        try:
            if statement.is_batch and statement.transaction:
                with connection.transaction():
                    for sub in statement.subs:
                        self._run_sub(connection, statement, sub)
                    # What a failure at COMMIT names: the locks go with the transaction.
                    statement.locks = _locks_of(connection, statement.pid)
            else:
                for sub in statement.subs:
                    self._run_sub(connection, statement, sub)
        except _SubFailed as failed:
            return failed.status, failed.error
        except psycopg.errors.QueryCanceled as exc:
            return (ABORTED if statement.cancel_requested else FAILED), _pg_error_text(exc)
        except psycopg.Error as exc:
            # Raised at COMMIT (deferred constraints, serialization failures...).
            return FAILED, self._error_text(exc, statement)
        except Exception as exc:
            log.exception("stand-in error in statement %s", statement.id)
            return FAILED, f"ERROR: stand-in internal error: {type(exc).__name__}: {exc}"
        return None

    def _run_sub(
        self, connection: psycopg.Connection[Any], statement: _Statement, sub: _Sub
    ) -> None:
        """Run one SQL; on failure record it on the sub and raise _SubFailed."""
        with self._lock:
            if statement.cancel_requested:
                raise _SubFailed(ABORTED, "Query was cancelled by the user.")
            sub.status = STARTED
            sub.started = sub.updated_at = time.time()
        try:
            if statement.db_role is not None:
                _refuse_identity_switch(sub.sql)
            if is_copy(sub.sql):
                # A COPY of several files is atomic even outside a batch transaction.
                with connection.transaction():
                    rows = self._copy(connection, statement, sub.sql)
                columns, records = None, None
            elif statement.is_batch and statement.transaction and is_alter_column_type(sub.sql):
                raise SqlTranslationError(_ALTER_TYPE_IN_TRANSACTION)
            elif (plan := plan_table_ddl(sub.sql)) is not None:
                rows = self._run_ddl(connection, statement, plan)
                columns, records = None, None
            else:
                translated = translate_sql(sub.sql, statement.parameters)
                # Outside a TRANSACTION batch the session is in autocommit, so VACUUM
                # and friends work as they do in Redshift.
                with connection.cursor() as cursor:
                    cursor.execute(translated)
                    columns, records = self._fetch(connection, cursor)
                    rows = cursor.rowcount
        except psycopg.errors.QueryCanceled as exc:
            status = ABORTED if statement.cancel_requested else FAILED
            raise self._fail(sub, status, _pg_error_text(exc)) from exc
        except psycopg.Error as exc:
            raise self._fail(sub, FAILED, self._error_text(exc, statement)) from exc
        except _Cancelled as exc:
            raise self._fail(sub, ABORTED, "Query was cancelled by the user.") from exc
        except (_CopyError, SqlTranslationError, catalog.KeyDefinitionError) as exc:
            raise self._fail(sub, FAILED, f"ERROR: {exc}") from exc
        except Exception as exc:
            # A bug in the stand-in: fail the statement visibly rather than hang it.
            log.exception("stand-in error in statement %s", sub.id)
            raise self._fail(
                sub, FAILED, f"ERROR: stand-in internal error: {type(exc).__name__}: {exc}"
            ) from exc
        with self._lock:
            now = time.time()
            sub.status, sub.updated_at, sub.ended = FINISHED, now, now
            sub.result_rows = rows if rows is not None else -1
            if records is not None:
                sub.has_result_set = True
                sub.columns, sub.records = columns, records
                sub.result_size = len(json.dumps(records))

    # --- database users, isolation errors ----------------------------------------------

    def _prepare(self, connection: psycopg.Connection[Any]) -> None:
        """The stand-in's schema in the DSN's database, once per DSN (as the superuser)."""
        dsn = self._dsn  # tests may point the stand-in at another database meanwhile
        if dsn in self._prepared:
            return
        catalog.prepare(connection)
        with self._lock:
            self._prepared.add(dsn)

    def _become(self, connection: psycopg.Connection[Any], role: str) -> None:
        """Make the session the database user `role` (created with no privileges at all).

        SET SESSION AUTHORIZATION rather than SET ROLE: current_user and session_user are
        both the user, and RESET ROLE cannot lead back to the superuser.
        """
        check_identifier(role)  # a longer name would be cut by PostgreSQL: refused
        if role not in self._roles:
            if not connection.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", [role]
            ).fetchone():
                try:
                    connection.execute(
                        pgsql.SQL("CREATE ROLE {} NOLOGIN").format(pgsql.Identifier(role))
                    )
                except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
                    pass  # created concurrently for another statement
            with self._lock:
                self._roles.add(role)
        connection.execute(pgsql.SQL("SET SESSION AUTHORIZATION {}").format(pgsql.Identifier(role)))

    @contextmanager
    def _superuser(
        self, connection: psycopg.Connection[Any], statement: _Statement
    ) -> Iterator[None]:
        """The stand-in's bookkeeping, as the superuser, inside the statement's transaction.

        Back to the database user afterwards; if the transaction failed meanwhile its
        rollback restores the user (SET inside a transaction is undone with it).
        """
        role = statement.db_role
        if role is None:
            yield
            return
        connection.execute("RESET SESSION AUTHORIZATION")
        try:
            yield
        finally:
            if connection.info.transaction_status != psycopg.pq.TransactionStatus.INERROR:
                connection.execute(
                    pgsql.SQL("SET SESSION AUTHORIZATION {}").format(pgsql.Identifier(role))
                )

    def _error_text(self, error: psycopg.Error, statement: _Statement) -> str:
        if isinstance(error, _SERIALIZATION_ERRORS):
            return self._isolation_violation(statement)
        return redshift_error_text(error, statement.database)

    def _isolation_violation(self, statement: _Statement) -> str:
        """Error 1023 for a serialization failure (or deadlock) of `statement`.

        PostgreSQL names no table: the stand-in names the first table the transaction
        wrote (or read), from its locks, which a failed transaction still holds until
        its rollback (or from the snapshot taken before COMMIT). The cycle: its own
        transaction, those of other sessions holding locks on that table, and those of
        the stand-in's batches on that table that committed while it ran. "unknown"
        where that is gone (a single statement fails after its implicit rollback).
        """
        table, xids = None, []
        try:
            with psycopg.connect(self._dsn, autocommit=True) as admin:
                tables, own = statement.locks or _locks_of(admin, statement.pid)
                if tables:
                    table = tables[0]
                    xids = [own] if own else []
                    xids += [row[0] for row in admin.execute(_OTHER_XIDS, [table, statement.pid])]
        except psycopg.Error:
            log.warning("could not read the locks of statement %s", statement.id)
        if table is not None:
            with self._lock:
                xids += [
                    other.locks[1]
                    for other in self._statements.values()
                    if other is not statement
                    and other.locks is not None
                    and other.locks[1] is not None
                    and table in other.locks[0]
                    and (other.ended is None or other.ended >= (statement.started or 0.0))
                ]
        xids = list(dict.fromkeys(xids))  # each once, in order
        return _ISOLATION_VIOLATION.format(
            table=table if table is not None else "unknown",
            xids=", ".join(xids) or "unknown",
            pid=statement.pid,
        )

    # --- declared keys and encodings ---------------------------------------------------

    def _run_ddl(
        self, connection: psycopg.Connection[Any], statement: _Statement, plan: TableDdl
    ) -> int | None:
        """Run a CREATE/ALTER TABLE and keep its keys and encodings as metadata.

        One transaction (a savepoint inside a batch), so the table and its record
        appear, change or fail together even outside a batch.
        """
        translated = translate_sql(plan.sql, statement.parameters) if plan.sql else None
        with connection.transaction():
            if plan.action == "create":
                assert translated is not None
                if self._execute_ddl(connection, translated):
                    return None  # IF NOT EXISTS and it existed: nothing was declared
                oid, relname = self._table(connection, plan.table)
                parent = self._table(connection, plan.like)[0] if plan.like else None
                with self._superuser(connection, statement):
                    catalog.record_keys(connection, oid, relname, plan.keys)
                    catalog.record_encodings(connection, oid, plan.encodings)
                    if parent is not None:
                        catalog.copy_like(connection, parent, oid, relname)
                return None
            oid, relname = self._table(connection, plan.table)
            if plan.action == "drop_constraint":
                assert plan.constraint is not None and translated is not None
                with self._superuser(connection, statement):
                    declared = catalog.has_key(connection, oid, plan.constraint)
                if not declared:
                    self._execute_ddl(connection, translated)  # a constraint of PostgreSQL's
                    return None
            elif plan.action == "add_column":
                assert translated is not None
                self._execute_ddl(connection, translated)
            self._require_owner(connection, oid, relname)
            if plan.action == "alter_type":
                assert translated is not None
                self._check_alterable(connection, statement, oid, relname, plan)
                self._execute_ddl(connection, translated)
                return None
            with self._superuser(connection, statement):
                if plan.action == "drop_constraint":
                    catalog.forget_key(connection, oid, str(plan.constraint))
                catalog.record_keys(connection, oid, relname, plan.keys)
                catalog.record_encodings(connection, oid, plan.encodings)
        return None

    @staticmethod
    def _execute_ddl(connection: psycopg.Connection[Any], sql: str) -> bool:
        """Run `sql`; True if PostgreSQL skipped it (IF NOT EXISTS on an existing table)."""
        notices: list[str] = []

        def keep(diagnostic: psycopg.errors.Diagnostic) -> None:
            notices.append(diagnostic.sqlstate or "")

        connection.add_notice_handler(keep)
        try:
            connection.execute(sql)
        finally:
            connection.remove_notice_handler(keep)
        return "42P07" in notices  # duplicate_table: "relation ... already exists, skipping"

    @staticmethod
    def _table(connection: psycopg.Connection[Any], table: str) -> tuple[int, str]:
        """(oid, name) of a table, looked up as the statement's user would look it up."""
        row = connection.execute(
            "SELECT oid::int, relname FROM pg_class WHERE oid = to_regclass(%s)", [table]
        ).fetchone()
        if row is None:
            shown = ".".join(part.strip().strip('"') for part in table.split("."))
            raise SqlTranslationError(f'relation "{shown}" does not exist')
        return int(row[0]), str(row[1])

    @staticmethod
    def _require_owner(connection: psycopg.Connection[Any], oid: int, relname: str) -> None:
        """What PostgreSQL checks before an ALTER TABLE the stand-in does itself."""
        owner = connection.execute(
            "SELECT pg_has_role(relowner, 'USAGE') FROM pg_class WHERE oid = %s", [oid]
        ).fetchone()
        if not (owner and owner[0]):
            raise SqlTranslationError(f"must be owner of relation {relname}")

    def _check_alterable(
        self,
        connection: psycopg.Connection[Any],
        statement: _Statement,
        oid: int,
        relname: str,
        plan: TableDdl,
    ) -> None:
        """Refuse ALTER COLUMN TYPE where Redshift refuses it (ALTER TABLE reference):
        "You can't alter columns with UNIQUE, PRIMARY KEY, or FOREIGN KEY", "with default
        values", "with compression encodings BYTEDICT, RUNLENGTH, TEXT255, or TEXT32K".

        Redshift's own error texts for these are not documented: the wording follows its
        "ALTER TABLE ADD COLUMN does not support ..." (an assumption).
        """
        row = connection.execute(
            "SELECT attnum, atthasdef FROM pg_attribute "
            "WHERE attrelid = %s AND attname = %s AND attnum > 0 AND NOT attisdropped",
            [oid, plan.column],
        ).fetchone()
        if row is None:
            return  # PostgreSQL reports the missing column
        attnum, has_default = int(row[0]), bool(row[1])
        with self._superuser(connection, statement):
            keys = catalog.keys_of_column(connection, oid, attnum)
            encoding = catalog.encoding_of_column(connection, oid, attnum)
        where = f'column "{plan.column}" of relation "{relname}"'
        if keys:
            name, kind = keys[0]
            raise SqlTranslationError(
                "ALTER TABLE ALTER COLUMN does not support columns with UNIQUE, PRIMARY KEY "
                f'or FOREIGN KEY constraints ({where} is in {kind} "{name}")'
            )
        if has_default:
            raise SqlTranslationError(
                f"ALTER TABLE ALTER COLUMN does not support columns with default values ({where})"
            )
        if encoding in catalog.FROZEN_ENCODINGS:
            raise SqlTranslationError(
                "ALTER TABLE ALTER COLUMN does not support columns with BYTEDICT, RUNLENGTH, "
                f"TEXT255 or TEXT32K encoding ({where} is ENCODE {encoding})"
            )

    def _fail(self, sub: _Sub, status: str, error: str) -> _SubFailed:
        with self._lock:
            now = time.time()
            sub.status, sub.error, sub.updated_at, sub.ended = status, error, now, now
        return _SubFailed(status, error)

    def _fetch(
        self, connection: psycopg.Connection[Any], cursor: psycopg.Cursor[Any]
    ) -> tuple[list[dict[str, Any]] | None, list[list[dict[str, Any]]] | None]:
        """Column metadata and Data API records of the result set, if there is one."""
        description = cursor.description
        if description is None:
            return None, None
        rows = cursor.fetchall()
        names = self._type_names(connection, [c.type_code for c in description])
        columns = []
        for column in description:
            type_name = names.get(column.type_code, "unknown")
            columns.append(
                {
                    "name": column.name,
                    "label": column.name,
                    "typeName": _TYPE_NAMES.get(type_name, type_name),
                    "nullable": 1,
                    "precision": column.precision or column.display_size or 0,
                    "scale": column.scale or 0,
                    "length": 0,
                    "isSigned": type_name in _SIGNED_TYPES,
                    "isCurrency": False,
                    "isCaseSensitive": type_name in ("varchar", "bpchar", "text"),
                    "schemaName": "",
                    "tableName": "",
                }
            )
        return columns, [[_field(value) for value in row] for row in rows]

    @staticmethod
    def _type_names(connection: psycopg.Connection[Any], oids: list[int]) -> dict[int, str]:
        names: dict[int, str] = {}
        missing = []
        for oid in oids:
            info = connection.adapters.types.get(oid)
            if info is not None:
                names[oid] = info.name
            else:
                missing.append(oid)
        if missing:
            for oid, name in connection.execute(
                "SELECT oid::int, typname FROM pg_type WHERE oid = ANY(%s)", [missing]
            ):
                names[oid] = name
        return names

    # --- COPY emulation ----------------------------------------------------------------

    def _copy(self, connection: psycopg.Connection[Any], statement: _Statement, sql: str) -> int:
        """Emulate Redshift `COPY ... FORMAT AS PARQUET`; return the number of rows loaded."""
        spec = parse_copy(sql)
        if spec.format != "PARQUET":
            raise _CopyError(
                "the local Redshift stand-in only emulates COPY ... FORMAT AS PARQUET "
                f"(got {spec.format or 'the default text format'})"
            )
        if spec.refused:
            raise _CopyError(f"{spec.refused[0]} argument is not supported for PARQUET based COPY")
        if not spec.authorized:
            raise _CopyError(
                "Invalid credentials. Must be of the format: credentials "
                "'aws_iam_role=...' or "
                "'aws_access_key_id=...;aws_secret_access_key=...[;token=...]'"
            )
        if not spec.source.startswith("s3://"):
            raise _CopyError(f"the stand-in only loads from s3:// (got '{spec.source}')")
        regclass, targets = self._copy_targets(connection, spec)
        s3 = self._copy_reader(statement, spec.iam_role)
        files = (
            self._manifest_files(s3, spec.source)
            if spec.manifest
            else self._prefix_files(s3, spec.source)
        )
        loaded = 0
        column_list = pgsql.SQL(", ").join(pgsql.Identifier(c.name) for c in targets)
        for url, data in self._read_files(s3, files):
            if statement.cancel_requested:
                raise _Cancelled()
            table = self._checked_table(spec, targets, url, data)
            if table.num_rows == 0:
                continue
            used = targets[: table.num_columns]  # FILLRECORD may leave trailing columns
            copy_sql = pgsql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
                pgsql.SQL(regclass),
                column_list
                if len(used) == len(targets)
                else pgsql.SQL(", ").join(pgsql.Identifier(c.name) for c in used),
            )
            with connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
                for chunk in _csv_chunks(_csv_ready(table, used)):
                    copy.write(chunk)
            loaded += table.num_rows
        return loaded

    def _copy_reader(self, statement: _Statement, role: str | None) -> Any:
        """An S3 client acting as the COPY's IAM role (`copy_role_s3`), as Redshift
        assumes the role to read; without a role factory, the plain S3 client."""
        if self._copy_role_s3 is None:
            return self._s3_client_factory()
        try:
            return self._copy_role_s3(role)
        except Exception as exc:  # the role does not exist, or does not trust Redshift
            user = statement.db_user or "?"
            shown = role or "set as default"
            raise _CopyError(
                f"User {user} is not authorized to assume IAM Role {shown} "
                f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
            ) from None

    def _copy_targets(
        self, connection: psycopg.Connection[Any], spec: CopySpec
    ) -> tuple[str, list[_TableColumn]]:
        """The table (as regclass text) and the columns the file's columns map to."""
        row = connection.execute(
            "SELECT to_regclass(%s)::oid::int, to_regclass(%s)::text", [spec.table, spec.table]
        ).fetchone()
        if row is None or row[0] is None:
            raise _CopyError(f'relation "{spec.table}" does not exist')
        oid, regclass = row
        columns = [
            _TableColumn(name, type_oid, formatted, identity != "", generated != "")
            for name, type_oid, formatted, identity, generated in connection.execute(
                """
                SELECT attname, atttypid::int, format_type(atttypid, atttypmod),
                       attidentity::text, attgenerated::text
                FROM pg_attribute
                WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped
                ORDER BY attnum
                """,
                [oid],
            )
        ]
        if spec.columns is None:
            # IDENTITY columns are generated unless EXPLICIT_IDS; generated ones always.
            targets = [
                c for c in columns if not c.generated and (spec.explicit_ids or not c.identity)
            ]
        else:
            by_name = {c.name: c for c in columns}
            targets = []
            for name in spec.columns:
                if name not in by_name:
                    raise _CopyError(f'column "{name}" of relation "{spec.table}" does not exist')
                targets.append(by_name[name])
        return regclass, targets

    def _prefix_files(self, s3: Any, url: str) -> list[tuple[str, str, int | None]]:
        """Every object whose key starts with the prefix (Redshift's FROM semantics)."""
        bucket, prefix = _split_s3(url)
        files: list[tuple[str, str, int | None]] = []
        try:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    if obj["Key"].endswith("/") and obj["Size"] == 0:
                        continue  # a console "folder" marker, not a file
                    files.append((bucket, obj["Key"], None))
        except Exception as exc:
            raise _CopyError(_s3_error_text(exc)) from exc
        if not files:
            raise _CopyError(f"The specified S3 prefix '{prefix}' does not exist")
        return files

    def _manifest_files(self, s3: Any, url: str) -> list[tuple[str, str, int | None]]:
        """The manifest's entries; Parquet entries must carry meta.content_length."""
        bucket, key = _split_s3(url)
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:
            raise _CopyError(f"Problem reading manifest file - {_s3_error_text(exc)}") from exc
        try:
            manifest = json.loads(body)
            entries = manifest["entries"]
            if not isinstance(entries, list):
                raise TypeError("entries is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            raise _CopyError(f"Manifest file is not in correct json format: '{url}'") from exc
        files: list[tuple[str, str, int | None]] = []
        for entry in entries:
            entry_url = entry.get("url") if isinstance(entry, dict) else None
            if not isinstance(entry_url, str) or not entry_url.startswith("s3://"):
                raise _CopyError(f"Manifest file entry has no valid s3:// url: '{url}'")
            length = (entry.get("meta") or {}).get("content_length")
            if not isinstance(length, int) or isinstance(length, bool):
                raise _CopyError(
                    f"Manifest entry for '{entry_url}' has no meta field 'content_length'; "
                    "it is required for COPY from columnar files (PARQUET, ORC)"
                )
            entry_bucket, entry_key = _split_s3(entry_url)
            try:
                size = s3.head_object(Bucket=entry_bucket, Key=entry_key)["ContentLength"]
            except Exception as exc:
                if entry.get("mandatory") is True:
                    raise _CopyError(
                        f"Manifest file entry '{entry_url}' is mandatory but cannot be read - "
                        f"{_s3_error_text(exc)}"
                    ) from exc
                continue  # an optional file that is missing is skipped
            if size != length:
                raise _CopyError(
                    f"Spectrum Scan Error: content_length {length} in the manifest does not "
                    f"match the size {size} of file '{entry_url}'"
                )
            files.append((entry_bucket, entry_key, length))
        return files

    @staticmethod
    def _read_files(
        s3: Any, files: list[tuple[str, str, int | None]]
    ) -> Iterator[tuple[str, bytes]]:
        for bucket, key, _ in files:
            url = f"s3://{bucket}/{key}"
            try:
                data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            except Exception as exc:
                raise _CopyError(f"{_s3_error_text(exc)} (file '{url}')") from exc
            yield url, data

    @staticmethod
    def _checked_table(
        spec: CopySpec, targets: list[_TableColumn], url: str, data: bytes
    ) -> pa.Table:
        """Read one Parquet file after checking it as strictly as Redshift does."""
        try:
            parquet = pq.ParquetFile(pa.BufferReader(data))
        except (pa.ArrowException, OSError) as exc:
            raise _CopyError(
                f"Spectrum Scan Error: File '{url}' has an invalid version number "
                "(not a valid Parquet file)"
            ) from exc
        _check_codecs(parquet, url)
        fields = parquet.schema_arrow
        if len(fields) != len(targets) and not (spec.fillrecord and len(fields) < len(targets)):
            raise _CopyError(
                "Spectrum Scan Error: Unmatched number of columns between table and file. "
                f"Table columns: {len(targets)}, Data columns: {len(fields)}, File name: {url}"
            )
        for index, (arrow_field, target) in enumerate(zip(fields, targets, strict=False)):
            nested = pa.types.is_nested(arrow_field.type)
            leaf = parquet.schema.column(index) if not nested else None
            kind = _parquet_kind(leaf) if leaf is not None else ("nested",)
            if not _compatible(kind, target):
                described = (
                    _parquet_description(leaf)
                    if leaf is not None
                    else f"optional group {arrow_field.name} ({arrow_field.type})"
                )
                raise _CopyError(
                    f"Spectrum Scan Error: File '{url}' has an incompatible Parquet schema for "
                    f"column '{target.name}'. Column type: {_redshift_type(target.formatted)}, "
                    f"Parquet schema: {described}"
                )
            if kind[0] == "timestamp" and leaf is not None:
                _check_timestamp(leaf, url)
        table = parquet.read()
        for index, arrow_field in enumerate(table.schema):
            if pa.types.is_dictionary(arrow_field.type):
                # Files written from dictionary arrays read back as such; use plain values.
                table = table.set_column(
                    index, arrow_field.name, table.column(index).cast(arrow_field.type.value_type)
                )
        for index, target in enumerate(targets[: table.num_columns]):
            limit = _length_limit(target.formatted)
            if limit is None:
                continue
            _check_bytes(spec.table, target, limit, table.column(index), url)
        return table


# Parquet that COPY reads. Redshift documents no codec or type matrix for COPY from
# Parquet; its own UNLOAD writes "Apache Parquet version 1.0 format ... compressed using
# SNAPPY" (UNLOAD, https://docs.aws.amazon.com/redshift/latest/dg/r_UNLOAD.html) and
# Kinesis Data Firehose, AWS's other Parquet writer for Redshift, offers UNCOMPRESSED, GZIP
# and SNAPPY (ParquetSerDe, https://docs.aws.amazon.com/firehose/latest/APIReference/
# API_ParquetSerDe.html). The stand-in accepts those three, nothing newer (ZSTD, LZ4,
# BROTLI): an assumption, which `myshift doctor` checks in the user's own account.
_COPY_CODECS = ("UNCOMPRESSED", "SNAPPY", "GZIP")
# Timestamps: INT96 (what Spark/Hive/Impala wrote for years) or INT64 carrying the legacy
# converted type. A timestamp with only a logical type (pyarrow's default for a naive
# timestamp) is refused: public reports show it loading as wrong values.
_LEGACY_TIMESTAMPS = ("TIMESTAMP_MICROS", "TIMESTAMP_MILLIS")


def _check_codecs(parquet: pq.ParquetFile, url: str) -> None:
    metadata = parquet.metadata
    for group_index in range(metadata.num_row_groups):
        group = metadata.row_group(group_index)
        for column_index in range(group.num_columns):
            column = group.column(column_index)
            if column.compression not in _COPY_CODECS:
                raise _CopyError(
                    f"Spectrum Scan Error: File '{url}' column '{column.path_in_schema}' is "
                    f"compressed with {column.compression}: the stand-in only accepts the "
                    f"codecs Redshift's own tools write ({', '.join(_COPY_CODECS)}) "
                    "(assumption; `myshift doctor` checks it in your account)"
                )


def _check_timestamp(leaf: Any, url: str) -> None:
    if leaf.physical_type == "INT96" or leaf.converted_type in _LEGACY_TIMESTAMPS:
        return
    raise _CopyError(
        f"Spectrum Scan Error: File '{url}' column '{leaf.name}' is a timestamp with only the "
        f"logical type ({_parquet_description(leaf)}): the stand-in accepts INT96 or INT64 with "
        "the converted type TIMESTAMP_MICROS/TIMESTAMP_MILLIS (assumption: public reports "
        "show logical-only timestamps loading corrupted; `myshift doctor` checks it in your "
        "account)"
    )


class _SubFailed(Exception):
    def __init__(self, status: str, error: str) -> None:
        super().__init__(error)
        self.status, self.error = status, error


def _split_s3(url: str) -> tuple[str, str]:
    bucket, _, key = url[len("s3://") :].partition("/")
    return bucket, key


def _s3_error_text(exc: Exception) -> str:
    """A botocore error in Redshift's S3ServiceException wording."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error", {})
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
        message = err.get("Message") or err.get("Code") or "error"
        return f"S3ServiceException:{message},Status {status},Error {err.get('Code', '')}"
    return f"S3ServiceException:{type(exc).__name__}"


def _check_bytes(
    table: str, target: _TableColumn, limit: int, column: pa.ChunkedArray, url: str
) -> None:
    """Redshift counts VARCHAR/CHAR lengths in bytes (PostgreSQL in characters)."""
    lengths = pc.binary_length(column)
    too_long = pc.greater(lengths, limit)
    if pc.any(too_long).as_py():
        row = pc.index(too_long, True).as_py()
        size = lengths[row].as_py()
        raise _CopyError(
            f"Load into table '{table}' failed. Check 'stl_load_errors' system table for "
            f"details. [err_reason: String length exceeds DDL length, colname: {target.name}, "
            f"col_length: {limit}, value_bytes: {size}, line_number: {row + 1}, "
            f"filename: {url}]"
        )
    if target.formatted.startswith("character("):
        multibyte = pc.not_equal(lengths, pc.utf8_length(column))
        if pc.any(multibyte).as_py():
            row = pc.index(multibyte, True).as_py()
            raise _CopyError(
                f"Load into table '{table}' failed. Check 'stl_load_errors' system table for "
                "details. [err_reason: Multibyte character not supported for CHAR "
                f"(Hint: try using VARCHAR), colname: {target.name}, line_number: {row + 1}, "
                f"filename: {url}]"
            )


def _csv_ready(table: pa.Table, targets: list[_TableColumn]) -> pa.Table:
    """Turn the columns pyarrow's CSV writer cannot render for PostgreSQL into text."""
    arrays = []
    for index, target in enumerate(targets):
        column = table.column(index)
        kind = column.type
        if (
            pa.types.is_binary(kind)
            or pa.types.is_large_binary(kind)
            or pa.types.is_fixed_size_binary(kind)
        ):
            column = pa.array(
                [None if v is None else "\\x" + v.hex() for v in column.to_pylist()], pa.string()
            )
        elif target.formatted == "jsonb":
            # A Parquet string loaded into SUPER is a string scalar, not parsed JSON.
            column = pa.array(
                [None if v is None else json.dumps(v) for v in column.to_pylist()], pa.string()
            )
        elif pa.types.is_timestamp(kind) and kind.unit == "ns":
            column = pc.cast(column, pa.timestamp("us", kind.tz), safe=False)  # INT96 files
        arrays.append(column)
    return pa.table(arrays, names=[f"c{i}" for i in range(len(arrays))])


def _csv_chunks(table: pa.Table, rows_per_chunk: int = 50_000) -> Iterator[bytes]:
    """CSV for PostgreSQL: NULL is an unquoted empty field, '' a quoted one."""
    options = pa_csv.WriteOptions(include_header=False, batch_size=rows_per_chunk)
    for batch in table.to_batches(max_chunksize=rows_per_chunk):
        sink = io.BytesIO()
        pa_csv.write_csv(pa.Table.from_batches([batch]), sink, options)
        yield sink.getvalue()
