"""`make bench`: extraction speed and memory against the native client, in one run.

Creates (once) a realistic settlement table of 1,000,000 rows in its own database
(`myshift_bench.settlement`: DECIMALs, CHAR, TINYINT(1), nullable VARCHAR and JSON,
DATETIME(6) with ties on `updated_at`), then measures, interleaved so both sides see
the same machine load:

- the native client, `mariadb --quick --batch -e "<the SELECT>" > /dev/null`
  (median of 3): the floor;
- our chunk extractor on the whole table to a Parquet file (median of 3; text reader),
  once with the pure-Python packet splitter instead of the C one, and once with the
  pymysql `rows` reader for reference: rows/s, peak RSS of the child
  process, output size, ratio to native;
- peak RSS extracting a 75,000-row and a 750,000-row chunk (child processes);
- a whole `--backup-only` run of the table through the local state machine
  (`LocalEngine`: planning, chunk Lambdas in parallel in warm worker processes,
  Parquet, upload to moto S3), median of 2, and its ratio to native, in 4 chunks of
  250,000 rows extracted at once, and again with the former default 75,000-row chunks; the
  CPU time of the engine process (moto), of the Lambda workers and of the MySQL
  server; the same run with 10-row chunks (the orchestration alone) and with other
  concurrencies.

The CLI as a user runs it, with a pipeline's defaults and with this tuned setting, and the
fixed cost of a run: `bench/cli_sync.py`.

Figures only, no pass/fail. Options: `--rows N` (another table size), `--recreate`,
`--quick` (one run of each, no pymysql reference). MySQL at MYSHIFT_BENCH_MYSQL_HOST /
_PORT / _USER (default 127.0.0.1:3306 root) with the password in MYSQL_PASSWORD; the
state machine run also needs the PostgreSQL of the local engine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "functions"))

import pymysql  # noqa: E402
from myshift import state  # noqa: E402

DATABASE = "myshift_bench"
TABLE = "settlement"
PIPELINE = "bench"
MYSQL = {
    "host": os.environ.get("MYSHIFT_BENCH_MYSQL_HOST", "127.0.0.1"),
    "port": int(os.environ.get("MYSHIFT_BENCH_MYSQL_PORT", "3306")),
    "user": os.environ.get("MYSHIFT_BENCH_MYSQL_USER", "root"),
}
PASSWORD = os.environ.get("MYSQL_PASSWORD", "")

CREATE = f"""
CREATE TABLE `{DATABASE}`.`{TABLE}` (
  id BIGINT NOT NULL PRIMARY KEY,
  order_no VARCHAR(64) NOT NULL,
  merchant_id INT NOT NULL,
  amount DECIMAL(15,4) NOT NULL,
  fee DECIMAL(10,4) NOT NULL,
  currency CHAR(3) NOT NULL,
  status TINYINT NOT NULL,
  is_refund TINYINT(1) NOT NULL,
  note VARCHAR(255) NULL,
  payload JSON NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  KEY idx_updated_at_id (updated_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
"""
# Four rows per second of updated_at (ties across every chunk boundary), 30% NULL notes
# (some with quotes, commas and 3-byte characters), 40% NULL JSON payloads.
FILL = f"""
INSERT INTO `{DATABASE}`.`{TABLE}`
SELECT seq,
  CONCAT('ORD-', LPAD(seq, 12, '0'), '-', SUBSTRING(MD5(seq), 1, 8)),
  1 + (seq * 7919) % 5000,
  ((seq * 104729) % 100000000000) / 10000,
  ((seq * 1299709) % 10000000) / 10000,
  ELT(1 + seq % 5, 'USD', 'EUR', 'JPY', 'KRW', 'GBP'),
  seq % 10,
  (seq % 23 = 0),
  CASE WHEN seq % 10 < 3 THEN NULL ELSE ELT(1 + seq % 6, '', 'refund requested',
    'manual review', 'ok', 'chargeback: 차지백', 'café ☕ settled "late", see ticket') END,
  CASE WHEN seq % 10 < 4 THEN NULL ELSE JSON_OBJECT('channel', ELT(1 + seq % 3, 'web',
    'app', 'pos'), 'items', seq % 7, 'ref', SUBSTRING(MD5(seq), 1, 16),
    'tags', JSON_ARRAY('a', seq % 100)) END,
  TIMESTAMP'2025-08-01 00:00:00' + INTERVAL (seq DIV 4) SECOND - INTERVAL (seq % 86400) SECOND
    + INTERVAL (seq % 1000000) MICROSECOND,
  TIMESTAMP'2025-08-01 00:00:00' + INTERVAL (seq DIV 4) SECOND
    + INTERVAL ((seq * 37) % 1000) * 1000 * (seq % 2) MICROSECOND
FROM `{DATABASE}`.`seq_1_to_{{rows}}`
"""  # noqa: S608 (constants only)


def connect() -> pymysql.Connection:
    return pymysql.connect(
        **MYSQL,
        password=PASSWORD,
        charset="utf8mb4",
        autocommit=True,
        init_command="SET time_zone = '+00:00'",
    )


def ensure_table(rows: int, recreate: bool) -> None:
    """The benchmark table with exactly `rows` rows (created with the SEQUENCE engine)."""
    conn = connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{DATABASE}`")
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
            "AND TABLE_NAME = %s",
            (DATABASE, TABLE),
        )
        exists = cur.fetchone()[0] == 1
        if exists and not recreate:
            cur.execute(f"SELECT COUNT(*) FROM `{DATABASE}`.`{TABLE}`")  # noqa: S608
            if cur.fetchone()[0] == rows:
                print(f"table {DATABASE}.{TABLE}: {rows:,} rows (kept; --recreate to rebuild)")
                return
        started = time.perf_counter()
        cur.execute(f"DROP TABLE IF EXISTS `{DATABASE}`.`{TABLE}`")
        cur.execute(CREATE)
        cur.execute(FILL.format(rows=rows))
        cur.execute(f"ANALYZE TABLE `{DATABASE}`.`{TABLE}`")
        cur.fetchall()
    conn.close()
    elapsed = time.perf_counter() - started
    print(f"table {DATABASE}.{TABLE}: created {rows:,} rows in {elapsed:.1f}s")


def process_cpu_seconds(pid: int | str) -> float | None:
    """User + system CPU time of a process from /proc (None if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def child_pids() -> set[str]:
    """The running children of this process (the engine's Lambda workers)."""
    pids: set[str] = set()
    for children in Path("/proc/self/task").glob("*/children"):
        try:
            pids.update(children.read_text().split())
        except OSError:
            continue
    return pids


def children_cpu_seconds() -> dict[str, float]:
    """CPU time of each running child of this process."""
    found = {pid: process_cpu_seconds(pid) for pid in child_pids()}
    return {pid: cpu for pid, cpu in found.items() if cpu is not None}


def children_peak_rss_mb() -> float:
    """The largest peak RSS (VmHWM) of the running children of this process, in MB."""
    peak = 0.0
    for pid in child_pids():
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except (OSError, ValueError, IndexError):
            continue
    return peak


def server_cpu_seconds() -> float | None:
    """CPU time of the local MariaDB/MySQL server process, if it runs on this machine."""
    for name in ("mariadbd", "mysqld"):
        found = subprocess.run(["pgrep", "-o", name], capture_output=True, text=True).stdout
        if found.strip():
            return process_cpu_seconds(found.split()[0])
    return None


def whole_table_query() -> tuple[str, dict[str, Any]]:
    """The SELECT of one chunk spanning the whole table (as our extractor sends it)."""
    from myshift import catalog, extract, keys
    from myshift.config import TableConfig

    conn = connect()
    table = TableConfig(name=f"{DATABASE}.{TABLE}", cursor="updated_at", primary_key=["id"])
    columns = catalog.source_columns(conn, table, None)
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT updated_at, id FROM `{DATABASE}`.`{TABLE}` "  # noqa: S608
            "ORDER BY updated_at DESC, id DESC LIMIT 1"
        )
        upper = keys.to_key(cur.fetchone())
        sql, params = extract.chunk_query(
            DATABASE, TABLE, columns, ["updated_at", "id"], None, upper, "rows"
        )
        literal = cur.mogrify(sql, params)
    conn.close()
    return literal, {"lower": None, "upper": upper}


def native_seconds(sql: str) -> float:
    client = shutil.which("mariadb") or shutil.which("mysql")
    if client is None:
        raise SystemExit("bench: neither `mariadb` nor `mysql` (the native client) is installed")
    command = [
        client,
        f"--host={MYSQL['host']}",
        f"--port={MYSQL['port']}",
        f"--user={MYSQL['user']}",
        "--quick",
        "--batch",
        "-e",
        sql,
    ]
    env = {**os.environ, "MYSQL_PWD": PASSWORD}
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True, env=env)
    return time.perf_counter() - started


# --- child processes (their peak RSS is theirs alone) --------------------------------


class _LocalFile:
    """Stands in for S3 in the extractor: the Parquet file is measured, not uploaded."""

    def upload_file(self, path: str, bucket: str, key: str) -> None:
        pass


def child_extract(spec: dict[str, Any]) -> dict[str, Any]:
    from myshift import catalog, extract, source
    from myshift.config import TableConfig

    if spec.get("splitter") == "python":  # the fallback where the C module is not built
        source.split_rows = source.split_rows_python

    conn = connect()
    table = TableConfig(name=f"{DATABASE}.{TABLE}", cursor="updated_at", primary_key=["id"])
    columns = catalog.source_columns(conn, table, None)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    cpu = time.process_time()
    result = extract.extract_chunk(
        conn,
        _LocalFile(),
        bucket="bench",
        s3_key="bench/chunk.parquet",
        index=0,
        database=DATABASE,
        table=TABLE,
        columns=columns,
        key_cols=["updated_at", "id"],
        lower=spec["lower"],
        upper=spec["upper"],
        reader=spec.get("reader", "text"),
        batch_rows=spec.get("batch_rows", extract.DEFAULT_BATCH_ROWS),
    )
    return {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
        "rows": result.rows,
        "bytes": result.bytes,
        "splitter": "pure Python" if source.split_rows is source.split_rows_python else "C",
        "baseline_rss_mb": baseline / 1024,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


PIPELINE_YAML = """
name: {name}
source: {{host: {host}, port: {port}, user: {user}, password_env: MYSQL_PASSWORD}}
target: {{database: dev, schema: bench_dw, workgroup: local}}
chunk_rows: 75000
max_concurrent_chunks: {concurrency}
safety_lag_seconds: 0
tables:
  - {{name: {database}.{table}, cursor: updated_at, primary_key: [id]}}
"""
TINY = "settlement_tiny"  # 140 rows in 14 chunks of 10: the orchestration alone
# Chunks extracted at once in the headline run. With 2 CPUs shared by MariaDB and the
# Lambda workers, 4 beat 2 (measured, see `make bench`'s other lines): while one chunk's
# reader waits for the server, another's Parquet work keeps a core busy.
CONCURRENCY = 4
# Rows per chunk in the headline run: one chunk per concurrent extraction (measured:
# 4 chunks of 250,000 beat 14 of 75,000, a former pipeline default, also shown).
# bench/cli_sync.py runs it through the CLI beside the pipeline defaults.
CHUNK_ROWS = 250_000


def child_state_machine(spec: dict[str, Any]) -> dict[str, Any]:
    """One `--backup-only` execution of the real state machine on the local engine."""
    os.environ.setdefault("MYSQL_PASSWORD", PASSWORD)
    from myshift.local.engine import DEFAULT_WAREHOUSE_DSN, LocalEngine

    pipelines = Path(tempfile.mkdtemp(prefix="myshift-bench-"))
    text = PIPELINE_YAML.format(
        name=PIPELINE,
        database=DATABASE,
        table=spec.get("table", TABLE),
        concurrency=spec["concurrency"],
        **MYSQL,
    )
    if spec.get("chunk_rows"):
        text = text.replace("chunk_rows: 75000", f"chunk_rows: {spec['chunk_rows']}")
    (pipelines / f"{PIPELINE}.yml").write_text(text)
    dsn = DEFAULT_WAREHOUSE_DSN.rsplit("/", 1)[0] + "/myshift_bench_warehouse"
    # One warm Lambda worker per concurrent chunk, as Lambda keeps warm environments for
    # a steady load: the run measures extraction, not cold starts (which the engine
    # also has when an invocation finds every worker busy).
    engine = LocalEngine(
        warehouse_dsn=dsn,
        pipelines_dir=pipelines,
        poll_seconds=1,
        workers=spec.get("workers", max(2, spec["concurrency"])),  # 0: handlers in-process
    )
    engine.start()
    try:
        assert engine.resources is not None
        sfn = engine.client("stepfunctions")
        server_before = server_cpu_seconds()
        workers_before = children_cpu_seconds()
        cpu = time.process_time()
        started = time.perf_counter()
        name = f"bench-{time.time_ns()}"
        arn = sfn.start_execution(
            stateMachineArn=engine.resources.state_machine_arn,
            name=name,
            input=json.dumps({"pipeline": PIPELINE, "mode": "backup_only"}),
        )["executionArn"]
        while (description := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            # Not faster: each DescribeExecution costs moto CPU that the run then lacks
            # (polling every 10 ms doubled the engine's CPU and slowed the run).
            time.sleep(0.1)
        seconds = time.perf_counter() - started
        server_after = server_cpu_seconds()
        workers_after = children_cpu_seconds()
        # A table's outcome is its run record (each table runs in a child execution).
        table = f"{DATABASE}.{TABLE}"
        result = state.get_runs(engine.client_table(), PIPELINE, [table], name).get(table, {})
        return {
            "status": description["status"],
            "cause": description.get("cause"),
            "seconds": seconds,
            "cpu_seconds": time.process_time() - cpu,
            "workers": len(workers_after),
            "workers_peak_rss_mb": children_peak_rss_mb(),
            "workers_cpu_seconds": sum(
                used - workers_before.get(pid, 0.0) for pid, used in workers_after.items()
            ),
            "server_cpu_seconds": None
            if server_before is None or server_after is None
            else server_after - server_before,
            "rows": result.get("rows_extracted"),
            "files": result.get("files_extracted"),
            "bytes": result.get("bytes_extracted"),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    finally:
        engine.stop()
        shutil.rmtree(pipelines, ignore_errors=True)


def in_child(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, __file__, "--child", kind, json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith('{"result"')]
    if completed.returncode != 0 or not lines:
        sys.stderr.write(completed.stderr[-3000:])
        raise SystemExit(f"bench: the {kind} child failed ({completed.returncode})")
    return json.loads(lines[-1])["result"]


# --- the report ------------------------------------------------------------------------


def first_chunk(limit: int) -> dict[str, Any]:
    """The key range of the first `limit`-row chunk, as the plan cuts it."""
    from myshift import plan

    conn = connect()
    chunks = plan.cut_chunks(conn, DATABASE, TABLE, ["updated_at", "id"], None, None, limit, 1)
    conn.close()
    return {"lower": chunks[0].lower, "upper": chunks[0].upper, "rows": chunks[0].rows}


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--recreate", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "SPEC"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, spec = args.child[0], json.loads(args.child[1])
        result = child_extract(spec) if kind == "extract" else child_state_machine(spec)
        print(json.dumps({"result": result}))
        return

    repeats = 1 if args.quick else 3
    print(f"== bench/extract.py ({os.cpu_count()} CPUs)")
    ensure_table(args.rows, args.recreate)
    sql, whole = whole_table_query()
    print(f"SELECT: {sql[:150]}...")

    # Warm the buffer pool and the page cache, then interleave native and ours.
    native_seconds(sql)
    native: list[float] = []
    ours: list[dict[str, Any]] = []
    for _ in range(repeats):
        native.append(native_seconds(sql))
        ours.append(in_child("extract", {**whole, "reader": "text"}))
    floor = median(native)
    seconds = median([r["seconds"] for r in ours])
    best = min(ours, key=lambda r: abs(r["seconds"] - seconds))
    print(f"\nnative client, whole table:   {floor:6.2f} s  (runs: {fmt(native)})")
    print(
        f"myshift text reader -> Parquet: {seconds:6.2f} s  (runs: "
        f"{fmt([r['seconds'] for r in ours])}), {best['rows'] / seconds:,.0f} rows/s, "
        f"{best['cpu_seconds']:.2f} s CPU, ratio {seconds / floor:.2f}x native "
        f"({best['splitter']} packet splitter)"
    )
    print(
        f"    peak RSS {best['peak_rss_mb']:.0f} MB (after imports {best['baseline_rss_mb']:.0f}"
        f" MB), Parquet {best['bytes'] / 1e6:.1f} MB for {best['rows']:,} rows"
    )
    if not args.quick:
        python_split = in_child("extract", {**whole, "reader": "text", "splitter": "python"})
        again = native_seconds(sql)
        print(
            f"  the same, pure-Python splitter: {python_split['seconds']:6.2f} s, "
            f"{python_split['cpu_seconds']:.2f} s CPU, ratio "
            f"{python_split['seconds'] / again:.2f}x native ({again:.2f} s next to it)"
        )
        rows_reader = in_child("extract", {**whole, "reader": "rows"})
        again = native_seconds(sql)
        print(
            f"pymysql rows reader -> Parquet: {rows_reader['seconds']:6.2f} s, "
            f"{rows_reader['rows'] / rows_reader['seconds']:,.0f} rows/s, ratio "
            f"{rows_reader['seconds'] / again:.2f}x native ({again:.2f} s next to it)"
        )

    print()
    for limit in (75_000, 750_000):
        if limit >= args.rows:
            continue
        chunk = first_chunk(limit)
        memory = in_child("extract", {**chunk, "reader": "text"})
        print(
            f"chunk of {memory['rows']:>7,} rows: peak RSS {memory['peak_rss_mb']:4.0f} MB "
            f"(after imports {memory['baseline_rss_mb']:.0f} MB), {memory['seconds']:.2f} s, "
            f"Parquet {memory['bytes'] / 1e6:.1f} MB"
        )

    print()
    runs: list[dict[str, Any]] = []
    natives: list[float] = []
    headline = {"concurrency": CONCURRENCY, "chunk_rows": CHUNK_ROWS}
    for _ in range(1 if args.quick else 2):
        runs.append(in_child("state_machine", headline))
        natives.append(native_seconds(sql))
    for run in runs:
        if run["status"] != "SUCCEEDED":
            raise SystemExit(f"bench: the state machine run failed: {run['cause']}")
    sm = median([r["seconds"] for r in runs])
    floor2 = median(natives)
    last = runs[-1]
    server = last["server_cpu_seconds"]
    print(
        f"state machine --backup-only, max_concurrent_chunks {CONCURRENCY}, chunk_rows "
        f"{CHUNK_ROWS:,}: {sm:.2f} s "
        f"(runs: {fmt([r['seconds'] for r in runs])}) for {last['rows']:,} rows in "
        f"{last['files']} files ({(last['bytes'] or 0) / 1e6:.1f} MB): ratio "
        f"{sm / floor2:.2f}x native ({floor2:.2f} s next to it)"
    )
    print(
        f"    engine process CPU {last['cpu_seconds']:.2f} s (moto: Step Functions, S3, "
        f"DynamoDB), {last['workers']} Lambda workers CPU {last['workers_cpu_seconds']:.2f} s"
        + ("" if server is None else f", MySQL server CPU {server:.2f} s")
    )
    print(
        f"    peak RSS: engine process {last['peak_rss_mb']:.0f} MB, largest Lambda worker "
        f"{last['workers_peak_rss_mb']:.0f} MB"
    )
    if args.quick:
        return
    default_chunks = [in_child("state_machine", {"concurrency": CONCURRENCY}) for _ in range(2)]
    default_seconds = median([r["seconds"] for r in default_chunks])
    print(
        f"    the same with the former default chunk_rows (75,000: {default_chunks[-1]['files']} "
        f"chunks): {default_seconds:.2f} s (runs: {fmt([r['seconds'] for r in default_chunks])}),"
        f" ratio {default_seconds / floor2:.2f}x native"
    )
    ensure_tiny()
    tiny = in_child("state_machine", {"concurrency": CONCURRENCY, "table": TINY, "chunk_rows": 10})
    print(
        f"    the same 14 chunks with 10 rows each (orchestration alone: moto Step Functions, "
        f"Lambda calls, DynamoDB, S3): {tiny['seconds']:.2f} s, engine CPU "
        f"{tiny['cpu_seconds']:.2f} s, Lambda workers CPU {tiny['workers_cpu_seconds']:.2f} s"
    )
    for concurrency in (1, 2):
        other = in_child("state_machine", {**headline, "concurrency": concurrency})
        print(
            f"    max_concurrent_chunks {concurrency}: {other['seconds']:.2f} s, ratio "
            f"{other['seconds'] / floor2:.2f}x native"
        )


def ensure_tiny() -> None:
    conn = connect()
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS `{DATABASE}`.`{TINY}`")
        cur.execute(f"CREATE TABLE `{DATABASE}`.`{TINY}` LIKE `{DATABASE}`.`{TABLE}`")
        cur.execute(
            f"INSERT INTO `{DATABASE}`.`{TINY}` "  # noqa: S608 (constants)
            f"SELECT * FROM `{DATABASE}`.`{TABLE}` ORDER BY id LIMIT 140"
        )
    conn.close()


def fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
