"""`make demo`: seed a sample table, start the local engine, sync it in three runs, doctor.

Each run goes through the real state machine (moto) with the real Lambda code,
MariaDB as the source and PostgreSQL as the Redshift stand-in. After each run the
CLI prints the run's verification and exits non-zero on a mismatch; this
script also checks the rows each run moved. Exit status 0 only if all of it matched.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pymysql
from myshift.local import sample
from myshift.local.engine import DEFAULT_WAREHOUSE_DSN

ROOT = Path(__file__).resolve().parents[1]
MYSHIFT = [sys.executable, "-m", "myshift"]
DATABASE, TABLE = "settlement", "settle_orders"
QUALIFIED = f"{DATABASE}.{TABLE}"
SEED_ROWS = 200_000
UPDATE_EVERY = 10  # 20,000 updated rows
NEW_ROWS = 5_000


def myshift(*args: str, capture: bool = False) -> subprocess.CompletedProcess:
    print(f"\n$ myshift {' '.join(args)}", flush=True)
    return subprocess.run(
        [*MYSHIFT, *args], cwd=ROOT, text=True, capture_output=capture, check=False
    )


def run_sync(*extra: str) -> None:
    result = myshift("--local", "sync", "pipeline", "-p", "demo", "-t", QUALIFIED, *extra)
    if result.returncode != 0:
        sys.exit(f"demo: the sync exited with {result.returncode}: counts did not verify")


def check_moved(expected: int, what: str) -> None:
    result = myshift(
        "--local", "--json", "watermark", "get", "-p", "demo", "-t", QUALIFIED, capture=True
    )
    mark = json.loads(result.stdout)
    extracted, loaded = mark["mysql_rows_extracted"], mark["redshift_rows_loaded"]
    ok = extracted == expected and loaded == expected
    print(
        f"{what}: extracted {extracted:,}, loaded {loaded:,}, expected {expected:,}: "
        f"{'OK' if ok else 'MISMATCH'}"
    )
    if not ok:
        sys.exit(1)


def main() -> None:
    started = time.monotonic()
    os.environ.setdefault("MYSQL_PASSWORD", "")
    myshift("local", "down")
    dsn = os.environ.get("MYSHIFT_LOCAL_WAREHOUSE_DSN", DEFAULT_WAREHOUSE_DSN)
    admin = dsn.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        name = dsn.rsplit("/", 1)[1]
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    print(f"warehouse stand-in: fresh database {dsn}")

    mysql = pymysql.connect(
        host="127.0.0.1", user="root", password=os.environ["MYSQL_PASSWORD"], autocommit=True
    )
    print(f"seeding {QUALIFIED} with {SEED_ROWS:,} rows ...", flush=True)
    sample.seed(mysql, DATABASE, TABLE, SEED_ROWS)

    if myshift("local", "up").returncode != 0:
        sys.exit("demo: the local engine did not start")

    print("\n== run 1: --limit 20000 --max-chunks 5 (exactly 100,000 rows)")
    run_sync("--limit", "20000", "--max-chunks", "5")
    check_moved(100_000, "run 1")

    print("\n== run 2: the rest, up to the frozen upper bound")
    run_sync("--limit", "20000")
    check_moved(SEED_ROWS - 100_000, "run 2")

    stamp = dt.datetime.now().replace(microsecond=0) - dt.timedelta(seconds=30)
    updated = sample.update_rows(mysql, DATABASE, TABLE, UPDATE_EVERY, stamp)
    first_new = sample.max_id(mysql, DATABASE, TABLE) + 1
    sample.insert_rows(
        mysql, DATABASE, TABLE, first_new, NEW_ROWS, start=stamp - dt.timedelta(hours=1)
    )
    print(f"\n== run 3: after updating {updated:,} rows and inserting {NEW_ROWS:,}")
    run_sync("--limit", "20000")
    check_moved(updated + NEW_ROWS, "run 3")

    print("\n== doctor: everything a run needs, checked by each function with its own role")
    if myshift("--local", "doctor", "-p", "demo").returncode != 0:
        sys.exit("demo: myshift doctor found a problem (see its rows above)")

    print(f"\ndemo: all three runs verified in {time.monotonic() - started:.0f}s.")
    print(
        "The local engine keeps running: try `.venv/bin/myshift --local watermark get "
        f"-p demo -t {QUALIFIED}`; stop it with `.venv/bin/myshift local down`."
    )


if __name__ == "__main__":
    main()
