"""The target table the load-batch tests build their SQL for."""

from __future__ import annotations

from myshift.load import TargetTable

TARGET = TargetTable(
    schema="dw",
    name="orders",
    columns_ddl='"id" BIGINT NOT NULL, "order" VARCHAR(40), "updated_at" TIMESTAMP',
    column_names=["id", "order", "updated_at"],
    primary_key=["id"],
    cursor="updated_at",
)
"""dw.orders: key `id`, cursor `updated_at`, a column named `order` (a reserved word)."""
