"""The canary file: one Parquet file with every column type the extractor writes.

`myshift doctor` writes it exactly as an extraction writes a chunk (the same type
mapping, `schema.to_record_batch`, the same Parquet writer and settings), COPYs it
with the pipeline's COPY role into a temporary table in the target database and reads
every value back: the COPY rules Redshift does not document (codecs, logical types,
timestamp encoding, DECIMAL precision, VARBYTE) become a fact in the user's own
account. The columns are built from synthetic information_schema rows, so no source
table is needed; each type appears at its edges, and a last row is all NULL.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from myshift.mysql_types import CANARY_EDGE_ROWS, MYSQL_TYPES, CanaryColumn, Family
from myshift.schema import Column, columns_from_information_schema, to_record_batch

KEY_COLUMN = "myshift_row"


# Every canary column of the type table, in its order.
_TYPES: tuple[CanaryColumn, ...] = tuple(
    column for row in MYSQL_TYPES.values() for column in row.canary
)
EDGE_ROWS = CANARY_EDGE_ROWS


def _information_schema_row(position: int, column: CanaryColumn) -> dict[str, Any]:
    data_type = column.column_type.split("(")[0].split(" ")[0]
    is_time = MYSQL_TYPES[data_type].family in (Family.DATETIME, Family.TIME)
    return {
        "COLUMN_NAME": column.name,
        "DATA_TYPE": data_type,
        "COLUMN_TYPE": column.column_type,
        "IS_NULLABLE": "YES",
        "CHARACTER_MAXIMUM_LENGTH": column.length,
        "CHARACTER_OCTET_LENGTH": column.octets,
        "NUMERIC_PRECISION": column.precision,
        "NUMERIC_SCALE": column.scale,
        "DATETIME_PRECISION": 6 if is_time else None,
        "CHARACTER_SET_NAME": column.charset,
        "COLUMN_KEY": "",
        "ORDINAL_POSITION": position,
    }


def canary_types() -> tuple[CanaryColumn, ...]:
    """The canary's typed columns (without the key), in the type table's order."""
    return _TYPES


def canary_columns() -> list[Column]:
    """The canary's columns: a key column, then one column per mapped type."""
    rows = [
        {
            **_information_schema_row(1, CanaryColumn(KEY_COLUMN, "int(11)", ())),
            "IS_NULLABLE": "NO",
            "COLUMN_KEY": "PRI",
        }
    ]
    rows += [_information_schema_row(i, t) for i, t in enumerate(_TYPES, start=2)]
    return columns_from_information_schema(rows)


def canary_rows() -> list[tuple[Any, ...]]:
    """The canary's rows as pymysql would return them: the edges, then a row of NULLs."""
    rows = [(i + 1, *(t.values[i] for t in _TYPES)) for i in range(EDGE_ROWS)]
    rows.append((EDGE_ROWS + 1, *(None for _ in _TYPES)))
    return rows


def canary_table() -> tuple[list[Column], pa.Table]:
    """The columns and the rows as the extractor converts them (what the file holds)."""
    columns = canary_columns()
    batch, _ = to_record_batch(columns, canary_rows())
    return columns, pa.Table.from_batches([batch])
