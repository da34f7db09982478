"""`make bench`: `myshift --local sync pipeline --backup-only` as a user runs it.

On the settlement table of `bench/extract.py` (1,000,000 rows, created once), with the
local engine started by `myshift local up` as a user starts it, times the CLI command,
a process of its own (imports, the run, the summary), interleaved with the native client
so all sides see the same machine load:

- the native client, `mariadb --quick --batch -e "<the SELECT of the whole table>"`;
- the pipeline's defaults: a pipeline file with no chunk_rows and no
  max_concurrent_chunks (the plan sizes the chunks from the table, see
  `plan.choose_chunk_rows`);
- a tuned pipeline file: `chunk_rows: 250000`, `max_concurrent_chunks: 4` (the fastest
  setting of `bench/extract.py`'s state machine runs);
- the same command once more with nothing new: the fixed cost of a run, which every
  figure above includes.

Each timed run starts from a reset watermark (`myshift watermark reset`, not timed).
Prints seconds (range of the runs), rows/s, the ratio to the native client next to it,
the chunks the plan chose and the peak RSS of the engine process and of its largest
Lambda worker. Options: `--rows N`, `--repeats N` (default 2), `--tuned-chunk-rows`,
`--tuned-concurrency`. MySQL and PostgreSQL as for `bench/extract.py`.
"""

from __future__ import annotations

import argparse
import json
import os
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
sys.path.insert(0, str(ROOT))

from bench import extract as bench_extract  # noqa: E402

DATABASE = bench_extract.DATABASE
TABLE = bench_extract.TABLE
MYSQL = bench_extract.MYSQL
PASSWORD = bench_extract.PASSWORD

PIPELINE_YAML = """
name: {name}
source: {{host: {host}, port: {port}, user: {user}, password_env: MYSQL_PASSWORD}}
target: {{database: dev, schema: {name}_dw, workgroup: local}}
safety_lag_seconds: 0
{settings}
tables:
  - {{name: {database}.{table}, cursor: updated_at, primary_key: [id]}}
"""
DEFAULTS = "bench_defaults"
TUNED = "bench_tuned"


class Cli:
    """The `myshift` command with the bench's environment (its own engine and files)."""

    def __init__(self, pipelines: Path, state_dir: Path) -> None:
        from myshift.local.engine import DEFAULT_WAREHOUSE_DSN

        self.state_dir = state_dir
        self.env = {
            **os.environ,
            "MYSQL_PASSWORD": PASSWORD,
            "MYSHIFT_PIPELINES_DIR": str(pipelines),
            "MYSHIFT_STATE_DIR": str(state_dir),
            "MYSHIFT_LOCAL_WAREHOUSE_DSN": DEFAULT_WAREHOUSE_DSN.rsplit("/", 1)[0]
            + "/myshift_bench_warehouse",
        }
        self.command = [sys.executable, "-m", "myshift"]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self.command, *args], capture_output=True, text=True, env=self.env, check=False
        )
        if done.returncode != 0:
            raise SystemExit(f"bench: myshift {' '.join(args)} failed: {done.stderr[-2000:]}")
        return done

    def sync(self, pipeline: str, *extra: str) -> dict[str, Any]:
        """One timed `myshift --local --json sync pipeline -p PIPELINE --backup-only`."""
        started = time.perf_counter()
        done = self.run(
            "--local", "--json", "sync", "pipeline", "-p", pipeline, "--backup-only", *extra
        )
        seconds = time.perf_counter() - started
        table = json.loads(done.stdout)["tables"][0]
        return {
            "seconds": seconds,
            "rows": table["rows_extracted"],
            "files": table["files"],
            "chunk_rows": table.get("chunk_rows"),
            "chunk_rows_from": table.get("chunk_rows_from"),
        }

    def reset(self, pipeline: str) -> None:
        self.run(
            "--local", "watermark", "reset", "-p", pipeline, "-t", f"{DATABASE}.{TABLE}", "--yes"
        )

    def up(self) -> None:
        """`myshift local up` on a free port (4599, its default, may be another's)."""
        from myshift.local.engine import free_port

        self.run("local", "up", "--port", str(free_port()))

    def engine_pid(self) -> int:
        return int(json.loads((self.state_dir / "local.json").read_text())["pid"])


def peak_rss_mb(pid: int) -> tuple[float, float]:
    """VmHWM of the engine process and the largest of its children (the Lambda workers)."""

    def hwm(p: int | str) -> float:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except (OSError, ValueError):
            pass
        return 0.0

    children: set[str] = set()
    for listed in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children.update(listed.read_text().split())
        except OSError:
            continue
    return hwm(pid), max((hwm(c) for c in children), default=0.0)


def span(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}" if len(values) > 1 else f"{values[0]:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tuned-chunk-rows", type=int, default=250_000)
    parser.add_argument("--tuned-concurrency", type=int, default=4)
    parser.add_argument("--idle-runs", type=int, default=3)
    args = parser.parse_args()

    print(f"== bench/cli_sync.py ({os.cpu_count()} CPUs)")
    bench_extract.ensure_table(args.rows, False)
    sql, _ = bench_extract.whole_table_query()
    pipelines = Path(tempfile.mkdtemp(prefix="myshift-bench-cli-"))
    state_dir = Path(tempfile.mkdtemp(prefix="myshift-bench-cli-state-"))
    tuned = f"chunk_rows: {args.tuned_chunk_rows}\nmax_concurrent_chunks: {args.tuned_concurrency}"
    for name, settings in ((DEFAULTS, ""), (TUNED, tuned)):
        (pipelines / f"{name}.yml").write_text(
            PIPELINE_YAML.format(
                name=name, settings=settings, database=DATABASE, table=TABLE, **MYSQL
            )
        )
    cli = Cli(pipelines, state_dir)
    cli.up()
    try:
        # Warm-up, not timed: each pipeline's first run creates its warehouse schema.
        for name in (DEFAULTS, TUNED):
            cli.sync(name, "--limit", "1000", "--max-chunks", "1")
        native: list[float] = []
        runs: dict[str, list[dict[str, Any]]] = {DEFAULTS: [], TUNED: []}
        for _ in range(args.repeats):
            native.append(bench_extract.native_seconds(sql))
            for name in (DEFAULTS, TUNED):
                cli.reset(name)
                runs[name].append(cli.sync(name))
        idle = [cli.sync(DEFAULTS) for _ in range(args.idle_runs)]
        engine_mb, worker_mb = peak_rss_mb(cli.engine_pid())
    finally:
        subprocess.run([*cli.command, "local", "down"], env=cli.env, capture_output=True)
        shutil.rmtree(pipelines, ignore_errors=True)

    floor = statistics.median(native)
    print(
        f"native client, whole table: {floor:.2f} s (runs: {span(native)}), "
        f"{args.rows / floor:,.0f} rows/s"
    )
    labels = {
        DEFAULTS: "pipeline defaults",
        TUNED: f"tuned (chunk_rows {args.tuned_chunk_rows:,}, max_concurrent_chunks "
        f"{args.tuned_concurrency})",
    }
    for name in (DEFAULTS, TUNED):
        seconds = [r["seconds"] for r in runs[name]]
        ratios = [r["seconds"] / n for r, n in zip(runs[name], native, strict=True)]
        last = runs[name][-1]
        chosen = (
            f"chunk_rows {last['chunk_rows']:,} ({last['chunk_rows_from']})"
            if last["chunk_rows"]
            else "chunk_rows ?"
        )
        print(
            f"myshift --local sync pipeline --backup-only, {labels[name]}: "
            f"{statistics.median(seconds):.2f} s (runs: {span(seconds)}), {last['rows']:,} rows in "
            f"{last['files']} files, {last['rows'] / statistics.median(seconds):,.0f} rows/s, "
            f"ratio {span(ratios)}x native; {chosen}"
        )
    idle_seconds = [r["seconds"] for r in idle]
    print(
        f"    fixed cost per run (the same command with nothing new, {idle[-1]['rows']} rows; "
        f"included above): {statistics.median(idle_seconds):.2f} s (runs: {span(idle_seconds)})"
    )
    print(
        f"    peak RSS: engine process {engine_mb:.0f} MB, largest Lambda worker {worker_mb:.0f} MB"
    )


if __name__ == "__main__":
    main()
