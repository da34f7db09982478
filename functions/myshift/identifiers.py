"""Identifier validation and quoting: the only way a name reaches generated SQL.

Names given by people (pipeline files, CLI flags) must be plain MySQL identifiers.
Names read from the source's metadata may hold anything MySQL allows and are quoted;
target (Redshift) names are sanitized by `myshift.schema` first.
"""

from __future__ import annotations

import re

from myshift.errors import IdentifierError

PLAIN_IDENTIFIER = re.compile(r"^[A-Za-z0-9_$]{1,64}$")
REDSHIFT_MAX_IDENTIFIER_BYTES = 127


def validate_identifier(name: str, *, what: str = "identifier") -> str:
    """Return `name` if it is a plain MySQL identifier, else raise IdentifierError."""
    if not isinstance(name, str) or not PLAIN_IDENTIFIER.match(name):
        raise IdentifierError(f"invalid {what} {name!r}: use 1-64 letters, digits, '_' or '$'")
    return name


def quote_mysql(name: str) -> str:
    """Quote one MySQL identifier with backticks (any character allowed but NUL).

    The result is for SQL that goes through pymysql's `%`-formatting, as every query
    myshift sends does (`source.query_all`, `source.stream_lines`, cursors given a
    parameter tuple, even an empty one): a `%` in the name is doubled so that it
    reaches the server as one `%` and never swallows a parameter.
    """
    if not name or "\x00" in name or len(name) > 64:
        raise IdentifierError(f"cannot quote MySQL identifier {name!r}")
    return "`" + name.replace("`", "``").replace("%", "%%") + "`"


def quote_mysql_table(database: str, table: str) -> str:
    """`database`.`table`, each part quoted."""
    return f"{quote_mysql(database)}.{quote_mysql(table)}"


def quote_redshift(name: str) -> str:
    """Quote one Redshift identifier with double quotes (lower case, <= 127 bytes)."""
    if not name or "\x00" in name or len(name.encode("utf-8")) > REDSHIFT_MAX_IDENTIFIER_BYTES:
        raise IdentifierError(f"cannot quote Redshift identifier {name!r}")
    return '"' + name.replace('"', '""') + '"'


def quote_redshift_table(schema: str, table: str) -> str:
    """ "schema"."table", each part quoted."""
    return f"{quote_redshift(schema)}.{quote_redshift(table)}"


def sql_string(value: str) -> str:
    """A single-quoted SQL string literal (for S3 URLs and role ARNs in COPY)."""
    if "\x00" in value:
        raise IdentifierError("NUL byte in SQL literal")
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
