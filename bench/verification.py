"""`make bench`: what a run's verification costs the source, on 1,000,000 rows.

On the settlement table of `bench/extract.py` (in bench/checksum.py's database), measures,
interleaved (median of 3 each):

- the native client's full read, `mariadb --quick --batch -e "SELECT * FROM t"`, the floor
  an extraction of the whole table is measured against;
- cutting the key ranges (`verification.cut_ranges`: a seek along the primary key every
  `--range-rows` keys);
- the source's figures of every range (`checksum.source_due_range_checksums_sql`, 100
  ranges a statement: per row the key and cursor's canonical text, SHA-256, due or newer);
- narrowing one range (`checksum.source_due_row_checksums_sql`: its keys listed).

Prints seconds and the ratio to the native read. Options: `--rows N`, `--range-rows N`,
`--keep`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "functions"))
sys.path.insert(0, str(ROOT))

from myshift import checksum, verification  # noqa: E402
from myshift.config import TableConfig  # noqa: E402
from myshift.schema import COLUMNS_QUERY, columns_from_information_schema  # noqa: E402

from bench import checksum as bench_checksum  # noqa: E402

DATABASE = bench_checksum.DATABASE
TABLE = bench_checksum.TABLE


def timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--range-rows", type=int, default=10_000)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    client = bench_checksum.shutil.which("mariadb") or bench_checksum.shutil.which("mysql")
    conn = bench_checksum.connect()
    try:
        bench_checksum.ensure_table(conn, args.rows)
        table = TableConfig(
            name=f"{DATABASE}.{TABLE}",
            cursor="updated_at",
            primary_key=["id"],
            verify_range_rows=args.range_rows,
        )
        with conn.cursor(bench_checksum.pymysql.cursors.DictCursor) as cur:
            cur.execute(COLUMNS_QUERY, (DATABASE, TABLE))
            info = cur.fetchall()
        names = {r["COLUMN_NAME"]: r["COLUMN_NAME"].lower() for r in info}
        by_name = {c.source_name: c for c in columns_from_information_schema(info, names)}
        columns = [by_name["id"], by_name["updated_at"]]
        with conn.cursor() as cur:
            cur.execute(
                f"SELECT updated_at, id FROM `{DATABASE}`.`{TABLE}` "  # noqa: S608
                "ORDER BY updated_at DESC, id DESC LIMIT 1"
            )
            newest = [
                value.strftime("%Y-%m-%d %H:%M:%S.%f") if i == 0 else value
                for i, value in enumerate(cur.fetchone())
            ]
        due = verification.due_predicate(table, newest)
        native, cut, figures, narrow = [], [], [], []
        for _ in range(3):
            if client:
                native.append(bench_checksum.native_seconds(client))
            seconds, ranges = timed(lambda: verification.cut_ranges(conn, table, args.range_rows))
            cut.append(seconds)

            def all_figures(ranges: list = ranges) -> int:
                count = 0
                for start in range(0, len(ranges), verification.RANGES_PER_SOURCE_QUERY):
                    sql, params = checksum.source_due_range_checksums_sql(
                        DATABASE,
                        TABLE,
                        columns,
                        ["id"],
                        ranges[start : start + verification.RANGES_PER_SOURCE_QUERY],
                        due,
                    )
                    with conn.cursor() as cur:
                        cur.execute(sql, params)
                        count += sum(int(r[1]) for r in cur.fetchall())
                return count

            seconds, due_rows = timed(all_figures)
            figures.append(seconds)
            sql, params = checksum.source_due_row_checksums_sql(
                DATABASE, TABLE, columns, ["id"], ranges[len(ranges) // 2], due
            )

            def one_range(sql: str = sql, params: list = params) -> int:
                with conn.cursor() as cur:
                    cur.execute(sql, params)
                    return len(cur.fetchall())

            seconds, listed = timed(one_range)
            narrow.append(seconds)
        median = statistics.median
        print(f"verification of {args.rows:,} rows in {len(ranges)} ranges ({due_rows:,} due)")
        if native:
            print(f"  native full read          {median(native):7.2f} s")
        print(f"  cut ranges                {median(cut):7.2f} s")
        ratio = f"  ({median(figures) / median(native):.2f}x the native read)" if native else ""
        print(f"  source figures, all ranges {median(figures):6.2f} s{ratio}")
        print(f"  narrow one range ({listed:,} keys) {median(narrow):5.3f} s")
    finally:
        if not args.keep:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{DATABASE}`")
        conn.close()


if __name__ == "__main__":
    main()
