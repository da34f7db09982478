"""`make bench`: what `myshift reconcile` of an unchanged table costs the source, on
1,000,000 rows, against the native client's full read.

On the settlement table of `bench/extract.py` (in bench/checksum.py's database), measures,
interleaved (median of 3 each):

- the native client's full read, `mariadb --quick --batch -e "SELECT * FROM t"`;
- the reconciliation's source side as its Plan steps run it: cutting the key ranges
  (`verification.cut_ranges`, `--range-rows` keys each) and every item's first level
  (`reconcile.level_document`: per range the count and checksum of every column of the
  rows due, one statement per `RANGES_PER_ITEM` ranges, each bounded by its keys), items
  one after another (`--parallel 1`) or side by side as the Distributed Map runs them.

Prints seconds, the ratio to the native read (goal <= 1.5x) and the Redshift statements
the warehouse side submits (one batch per item). Options: `--rows N`, `--range-rows N`,
`--parallel N`, `--keep`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "functions"))
sys.path.insert(0, str(ROOT))

from myshift import reconcile, verification  # noqa: E402
from myshift.config import TableConfig  # noqa: E402

from bench import checksum as bench_checksum  # noqa: E402

DATABASE = bench_checksum.DATABASE
TABLE = bench_checksum.TABLE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--range-rows", type=int, default=10_000)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    client = bench_checksum.shutil.which("mariadb") or bench_checksum.shutil.which("mysql")
    with bench_checksum.bench_table(args.rows, args.keep) as conn:
        table = TableConfig(
            name=f"{DATABASE}.{TABLE}",
            cursor="updated_at",
            primary_key=["id"],
            verify_range_rows=args.range_rows,
        )
        all_columns = bench_checksum.table_columns(conn)
        columns = all_columns
        newest = bench_checksum.newest_key(conn)
        schema: dict[str, Any] = {}

        def item(ranges: list) -> dict[str, Any]:
            own = bench_checksum.connect()  # each item its own Lambda, its own connection
            try:
                return reconcile.level_document(
                    own,
                    table,
                    columns=columns,
                    groups=[ranges],
                    watermark=newest,
                    target_schema="dw",
                    schema=schema,
                )
            finally:
                own.close()

        def source_side() -> tuple[int, int, int, int]:
            ranges = verification.cut_ranges(conn, table, args.range_rows)
            items = reconcile.item_ranges(ranges, args.parallel)
            with ThreadPoolExecutor(max_workers=args.parallel) as pool:
                documents = list(pool.map(item, items))
            rows = sum(f[0] + f[2] for d in documents for f in d["source"].values())
            statements = sum(len(d["target_sqls"]) for d in documents)
            return rows, len(ranges), len(items), statements

        native, ours = [], []
        for _ in range(3):
            if client:
                native.append(bench_checksum.native_seconds(client))
            started = time.perf_counter()
            rows, ranges, items, statements = source_side()
            ours.append(time.perf_counter() - started)
        median = statistics.median
        print(
            f"reconcile of {rows:,} rows: {ranges} ranges in {items} items, {args.parallel} at once"
        )
        if native:
            print(f"  native full read            {median(native):7.2f} s")
        ratio = f"  ({median(ours) / median(native):.2f}x the native read)" if native else ""
        print(f"  source side (cut + checksums) {median(ours):5.2f} s{ratio}")
        print(f"  Redshift: {items} batch(es), {statements} aggregate statement(s) in all")


if __name__ == "__main__":
    main()
