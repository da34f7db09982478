"""Rows of information_schema.COLUMNS as the source's column query returns them."""

from __future__ import annotations

from typing import Any


def info(
    name: str,
    data_type: str,
    column_type: str | None = None,
    *,
    nullable: bool = True,
    chars: int | None = None,
    octets: int | None = None,
    precision: int | None = None,
    scale: int | None = None,
    dt_precision: int | None = None,
    charset: str | None = None,
    key: str = "",
) -> dict[str, Any]:
    """An information_schema.COLUMNS row as COLUMNS_QUERY returns it (DictCursor)."""
    return {
        "COLUMN_NAME": name,
        "DATA_TYPE": data_type,
        "COLUMN_TYPE": column_type or data_type,
        "IS_NULLABLE": "YES" if nullable else "NO",
        "CHARACTER_MAXIMUM_LENGTH": chars,
        "CHARACTER_OCTET_LENGTH": octets,
        "NUMERIC_PRECISION": precision,
        "NUMERIC_SCALE": scale,
        "DATETIME_PRECISION": dt_precision,
        "CHARACTER_SET_NAME": charset,
        "COLUMN_KEY": key,
    }
