"""`make bench`: the source checksum query of a reconcile against the native full read.

On the settlement table of `bench/extract.py` (1,000,000 rows: DECIMALs, CHAR, TINYINT(1),
nullable VARCHAR and JSON, DATETIME(6)), in a database of its own, measures, interleaved
so both see the same machine load (median of 3 each):

- the native client's full read, `mariadb --quick --batch -e "SELECT * FROM t" > /dev/null`;
- `checksum.source_range_checksums_sql` over the whole table in 100 key ranges: every
  row's canonical text, SHA-256, range and sum, computed in MariaDB in one statement;
- the same ranges split between 2 statements on 2 connections at once (each row still
  read once), as the reconcile workflow's Distributed Map runs ranges side by side.

Prints rows, seconds of each, and the ratios (goal: <= 1.5). Options: `--rows N`,
`--ranges N`, `--parallel N`, `--keep` (keep the table; dropped by default).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "functions"))
sys.path.insert(0, str(ROOT))

import pymysql  # noqa: E402
from myshift import checksum  # noqa: E402
from myshift.schema import COLUMNS_QUERY, columns_from_information_schema  # noqa: E402

from bench import extract as bench_extract  # noqa: E402

DATABASE = "myshift_bench_checksum"
TABLE = bench_extract.TABLE
MYSQL = bench_extract.MYSQL
PASSWORD = bench_extract.PASSWORD


def connect() -> pymysql.Connection:
    return pymysql.connect(
        **MYSQL,
        password=PASSWORD,
        charset="utf8mb4",
        autocommit=True,
        init_command="SET time_zone = '+00:00'",  # as the extractor's (source.connect)
    )


def ensure_table(conn: pymysql.Connection, rows: int) -> None:
    """bench/extract.py's settlement table with `rows` rows, in DATABASE."""
    create = bench_extract.CREATE.replace(f"`{bench_extract.DATABASE}`", f"`{DATABASE}`")
    fill = bench_extract.FILL.replace(f"`{bench_extract.DATABASE}`", f"`{DATABASE}`")
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{DATABASE}`")
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
            "AND TABLE_NAME = %s",
            (DATABASE, TABLE),
        )
        if cur.fetchone()[0]:
            cur.execute(f"SELECT COUNT(*) FROM `{DATABASE}`.`{TABLE}`")  # noqa: S608
            if cur.fetchone()[0] == rows:
                print(f"table {DATABASE}.{TABLE}: {rows:,} rows (kept)")
                return
            cur.execute(f"DROP TABLE `{DATABASE}`.`{TABLE}`")
        started = time.perf_counter()
        cur.execute(create)
        cur.execute(fill.format(rows=rows))
        cur.execute(f"ANALYZE TABLE `{DATABASE}`.`{TABLE}`")
        cur.fetchall()
    print(
        f"table {DATABASE}.{TABLE}: created {rows:,} rows in {time.perf_counter() - started:.1f}s"
    )


@contextmanager
def bench_table(rows: int, keep: bool) -> Iterator[pymysql.Connection]:
    """A connection to the settlement table of `rows` rows in DATABASE (dropped after,
    unless `keep`)."""
    conn = connect()
    try:
        ensure_table(conn, rows)
        yield conn
    finally:
        if not keep:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{DATABASE}`")
        conn.close()


def table_columns(conn: pymysql.Connection) -> list:
    """The table's columns as the extractor sees them (target names in lower case)."""
    with conn.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute(COLUMNS_QUERY, (DATABASE, TABLE))
        info = cur.fetchall()
    names = {r["COLUMN_NAME"]: r["COLUMN_NAME"].lower() for r in info}
    return columns_from_information_schema(info, names)


def newest_key(conn: pymysql.Connection) -> list:
    """The table's last order key (updated_at, id): a watermark every row is due at."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT updated_at, id FROM `{DATABASE}`.`{TABLE}` "  # noqa: S608
            "ORDER BY updated_at DESC, id DESC LIMIT 1"
        )
        return [
            value.strftime("%Y-%m-%d %H:%M:%S.%f") if i == 0 else value
            for i, value in enumerate(cur.fetchone())
        ]


def native_seconds(client: str) -> float:
    """The native client's full read of the table to /dev/null."""
    command = [
        client,
        f"--host={MYSQL['host']}",
        f"--port={MYSQL['port']}",
        f"--user={MYSQL['user']}",
        "--quick",
        "--batch",
        "-e",
        f"SELECT * FROM `{DATABASE}`.`{TABLE}`",  # noqa: S608 (constants)
    ]
    env = {**os.environ, "MYSQL_PWD": PASSWORD} if PASSWORD else None
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True, env=env)
    return time.perf_counter() - started


def runs(times: list[float]) -> str:
    return "runs " + ", ".join(f"{t:.2f}" for t in times)


def checksum_seconds(conn: pymysql.Connection, sql: str, params: list) -> tuple[float, int]:
    """The source checksum query; (seconds, rows it counted)."""
    started = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(sql, params)
        result = checksum.parse_range_checksums(cur.fetchall())
    return time.perf_counter() - started, sum(r.rows for r in result.values())


def parallel_seconds(queries: list[tuple[str, list]]) -> tuple[float, int]:
    """Each query on a connection of its own, all at once; (seconds, rows counted)."""
    conns = [connect() for _ in queries]
    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(len(queries)) as pool:
            pairs = zip(conns, queries, strict=True)
            done = list(pool.map(lambda pair: checksum_seconds(pair[0], *pair[1]), pairs))
        return time.perf_counter() - started, sum(rows for _, rows in done)
    finally:
        for conn in conns:
            conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--ranges", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=2, help="statements at once")
    parser.add_argument("--keep", action="store_true", help="keep the table afterwards")
    args = parser.parse_args()
    client = shutil.which("mariadb") or shutil.which("mysql")
    if client is None:
        sys.exit("no mariadb/mysql client on PATH")
    with bench_table(args.rows, args.keep) as conn:
        with conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute(COLUMNS_QUERY, (DATABASE, TABLE))
            columns = columns_from_information_schema(list(cur.fetchall()))
        step = max(1, args.rows // args.ranges)
        bounds = [[i * step] for i in range(1, args.ranges)]
        ranges = [
            checksum.KeyRange(lower, upper)
            for lower, upper in zip([None, *bounds], [*bounds, None], strict=True)
        ]
        sql, params = checksum.source_range_checksums_sql(DATABASE, TABLE, columns, ["id"], ranges)
        share = -(-len(ranges) // args.parallel)
        split = [
            checksum.source_range_checksums_sql(
                DATABASE, TABLE, columns, ["id"], ranges[i : i + share]
            )
            for i in range(0, len(ranges), share)
        ]
        native, ours, parallel = [], [], []
        counted = counted_parallel = 0
        for _ in range(3):
            native.append(native_seconds(client))
            seconds, counted = checksum_seconds(conn, sql, params)
            ours.append(seconds)
            seconds, counted_parallel = parallel_seconds(split)
            parallel.append(seconds)
        assert counted == counted_parallel == args.rows, (counted, counted_parallel)
        native_s = statistics.median(native)
        print(f"rows: {counted:,} in {len(ranges)} ranges")
        print(f"native full read: {native_s:.2f}s ({runs(native)})")
        for label, times in (("one statement", ours), (f"{len(split)} at once", parallel)):
            median = statistics.median(times)
            print(
                f"checksum, {label}: {median:.2f}s ({runs(times)}), "
                f"ratio {median / native_s:.2f}x (goal <= 1.5x)"
            )


if __name__ == "__main__":
    main()
