"""The sample source table of the demo and the tests: `settlement.settle_orders`.

Deterministic (seeded) rows with many ties on `updated_at`, DECIMAL amounts,
VARCHAR and nullable columns; the same generator feeds the demo, the end-to-end
tests and the benchmarks.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pymysql

from myshift.identifiers import quote_mysql, quote_mysql_table

BASE_TIME = dt.datetime(2025, 8, 1, 0, 0, 0)
CURRENCIES = ["USD", "EUR", "JPY", "KRW", "GBP"]
NOTES = ["", "refund requested", "manual review", "ok", "chargeback: 차지백", "café ☕"]


def create_table(conn: pymysql.Connection, database: str, table: str) -> None:
    """(Re)create the sample table, empty."""
    qualified = quote_mysql_table(database, table)
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS {quote_mysql(database)}", ())
        cursor.execute(f"DROP TABLE IF EXISTS {qualified}", ())
        cursor.execute(
            f"""CREATE TABLE {qualified} (
                id BIGINT NOT NULL PRIMARY KEY,
                order_no VARCHAR(64) NOT NULL,
                merchant_id INT NOT NULL,
                amount DECIMAL(15,4) NOT NULL,
                fee DECIMAL(10,4) NULL,
                currency CHAR(3) NOT NULL,
                status TINYINT NOT NULL,
                note VARCHAR(255) NULL,
                created_at DATETIME(6) NOT NULL,
                updated_at DATETIME(6) NOT NULL,
                KEY idx_updated_at_id (updated_at, id)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
            (),
        )


def _row(rng: random.Random, row_id: int, updated_at: dt.datetime) -> tuple:
    created = updated_at - dt.timedelta(seconds=rng.randint(0, 86_400))
    return (
        row_id,
        f"ORD-{row_id:012d}",
        rng.randint(1, 5_000),
        Decimal(rng.randint(1, 10**10)) / Decimal(10_000),
        None if rng.random() < 0.2 else Decimal(rng.randint(0, 10**7)) / Decimal(10_000),
        rng.choice(CURRENCIES),
        rng.randint(0, 9),
        None if rng.random() < 0.3 else rng.choice(NOTES),
        created,
        updated_at,
    )


INSERT_SQL = (
    "INSERT INTO {table} (id, order_no, merchant_id, amount, fee, currency, status, note, "
    "created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def insert_rows(
    conn: pymysql.Connection,
    database: str,
    table: str,
    first_id: int,
    count: int,
    *,
    seed: int = 7,
    start: dt.datetime = BASE_TIME,
    batch: int = 5_000,
) -> None:
    """Insert `count` rows with ids from `first_id`; `updated_at` ties on whole seconds."""
    rng = random.Random(seed + first_id)
    sql = INSERT_SQL.format(table=quote_mysql_table(database, table))
    with conn.cursor() as cursor:
        for offset in range(0, count, batch):
            rows = []
            for row_id in range(first_id + offset, first_id + min(offset + batch, count)):
                # About 4 rows share each second: ties across chunk boundaries are common.
                updated = start + dt.timedelta(seconds=(row_id - first_id) // 4)
                rows.append(_row(rng, row_id, updated))
            cursor.executemany(sql, rows)
    conn.commit()


def seed(conn: pymysql.Connection, database: str, table: str, rows: int) -> None:
    """Create the table and fill it with `rows` rows (ids 1..rows)."""
    create_table(conn, database, table)
    insert_rows(conn, database, table, 1, rows)


def update_rows(
    conn: pymysql.Connection, database: str, table: str, every: int, updated_at: dt.datetime
) -> int:
    """Change the amount and note of every `every`-th row, stamping `updated_at`."""
    with conn.cursor() as cursor:
        changed = cursor.execute(
            f"UPDATE {quote_mysql_table(database, table)} "  # noqa: S608 (quoted)
            "SET amount = amount + 1, note = 'updated by demo', updated_at = %s "
            "WHERE MOD(id, %s) = 0",
            (updated_at, every),
        )
    conn.commit()
    return int(changed)


def max_id(conn: pymysql.Connection, database: str, table: str) -> int:
    """The largest id in the table (0 when empty)."""
    with conn.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {quote_mysql_table(database, table)}", ())  # noqa: S608
        return int(cursor.fetchone()[0])
