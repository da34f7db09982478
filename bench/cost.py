"""`make bench`: what one sync run costs in AWS, measured on the local engine.

Runs syncs of N chunks (default N = 1, 4 and 16 chunks of 10,000 rows, each table
fresh) and one run that finds nothing new, through the real state machine and the real
handlers (`myshift.local.engine.LocalEngine`: moto, MariaDB, the PostgreSQL Redshift
stand-in), and counts per run:

- state transitions: the StateEntered events of the execution and of its child
  executions (what Step Functions Standard bills), also per state, so the
  load-polling loop (WaitForLoad → FollowLoad → LoadFinished, 3 transitions a poll)
  can be told apart: in AWS a COPY takes longer than on the stand-in, so add 3 per
  extra poll (poll_seconds, 5 s in cdk.json);
- Lambda time: every handler call timed in-process, by function, times the memory
  `infra/functions.py` gives that function = GB-seconds;

and prints the cost at public list prices (us-east-1, no free tier): Step Functions
Standard $0.025 per 1,000 transitions, Lambda arm64 $0.0000133334 per GB-second and
$0.20 per million requests. Not included: Redshift compute (the load's RPU-seconds),
S3 / DynamoDB / Data API requests, CloudWatch Logs ingestion, Lambda cold starts.

Local handler time is not Lambda time (MySQL on localhost, moto over loopback, a
different CPU): read the Lambda figures as an order of magnitude; the transition counts
are exact. Options: `--chunks 1 4 16`, `--chunk-rows 10000`. MySQL at
MYSHIFT_BENCH_MYSQL_HOST / _PORT / _USER (127.0.0.1:3306 root), password in
MYSQL_PASSWORD; PostgreSQL as for the local engine.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "functions"))
sys.path.insert(0, str(ROOT))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import psycopg  # noqa: E402
import pymysql  # noqa: E402

DATABASE = "myshift_cost"
PIPELINE = "cost"
SCHEMA = "cost_dw"
MYSQL = {
    "host": os.environ.get("MYSHIFT_BENCH_MYSQL_HOST", "127.0.0.1"),
    "port": int(os.environ.get("MYSHIFT_BENCH_MYSQL_PORT", "3306")),
    "user": os.environ.get("MYSHIFT_BENCH_MYSQL_USER", "root"),
}
PASSWORD = os.environ.get("MYSQL_PASSWORD", "")

# Public list prices, us-east-1.
SFN_PER_TRANSITION = 0.025 / 1_000
LAMBDA_ARM_PER_GB_SECOND = 0.0000133334
LAMBDA_PER_REQUEST = 0.20 / 1_000_000


class HandlerClock:
    """Wraps every handler module's `handler`: seconds and calls per module."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def install(self, modules: list[str]) -> None:
        for module_name in modules:
            module = importlib.import_module(module_name)
            module.handler = self._timed(module_name.rsplit(".", 1)[1], module.handler)

    def _timed(self, name: str, handler: Callable[..., Any]) -> Callable[..., Any]:
        def timed(event: Any, context: Any) -> Any:
            started = time.perf_counter()
            try:
                return handler(event, context)
            finally:
                with self._lock:
                    self.seconds[name] += time.perf_counter() - started
                    self.calls[name] += 1

        return timed

    def take(self) -> tuple[dict[str, float], Counter[str]]:
        """The figures since the last take, and start over."""
        with self._lock:
            seconds, calls = dict(self.seconds), Counter(self.calls)
            self.seconds.clear()
            self.calls.clear()
        return seconds, calls


def pipeline_yaml(tables: list[str], chunk_rows: int) -> str:
    return "\n".join(
        [
            f"name: {PIPELINE}",
            f"source: {{host: {MYSQL['host']}, port: {MYSQL['port']}, user: {MYSQL['user']}, "
            "password_env: MYSQL_PASSWORD}",
            f"target: {{database: dev, schema: {SCHEMA}, workgroup: local}}",
            "strategy: sequential",
            f"chunk_rows: {chunk_rows}",
            "max_concurrent_chunks: 2",
            "safety_lag_seconds: 0",
            "tables:",
            *[f"  - {{name: {t}, cursor: updated_at, primary_key: [id]}}" for t in tables],
        ]
    )


def run(engine: Any, execution_input: dict[str, Any], timeout: float = 900) -> dict[str, Any]:
    """One execution to its end: its state transitions by state, its child executions'
    (each table's, each distributed chunk's) included: they are billed alike."""
    from myshift.local import limits

    limits.reset_stats()
    sfn = engine.client("stepfunctions")
    name = f"cost-{time.time_ns()}"
    arn = sfn.start_execution(
        stateMachineArn=engine.resources.state_machine_arn,
        name=name,
        input=json.dumps(execution_input),
    )["executionArn"]
    deadline = time.monotonic() + timeout
    while (description := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        if time.monotonic() > deadline:
            raise SystemExit(f"cost: {name} still running after {timeout:.0f} s")
        time.sleep(0.2)
    if description["status"] != "SUCCEEDED":
        raise SystemExit(f"cost: {name} {description['status']}: {description.get('cause')}")
    entered: Counter[str] = Counter()
    for history in limits.stats():
        entered.update(history.entered)
    return {"name": name, "entered": entered}


def lambda_memory_mb() -> dict[str, int]:
    """Each function's memory as deployed (infra/functions.py)."""
    from infra.functions import FUNCTIONS

    return {spec.name: spec.memory_mb for spec in FUNCTIONS}


def figures(
    label: str,
    entered: Counter[str],
    seconds: dict[str, float],
    calls: Counter[str],
    memory: dict[str, int],
) -> dict[str, Any]:
    transitions = sum(entered.values())
    gb_seconds = sum(s * memory[name] / 1024 for name, s in seconds.items())
    invocations = sum(calls.values())
    cost = {
        "step_functions": transitions * SFN_PER_TRANSITION,
        "lambda_compute": gb_seconds * LAMBDA_ARM_PER_GB_SECOND,
        "lambda_requests": invocations * LAMBDA_PER_REQUEST,
    }
    return {
        "run": label,
        "transitions": transitions,
        "load_polls": entered.get("WaitForLoad", 0),
        "invocations": invocations,
        "lambda_seconds": sum(seconds.values()),
        "gb_seconds": gb_seconds,
        "seconds_by_function": {k: round(v, 3) for k, v in sorted(seconds.items())},
        "calls_by_function": dict(sorted(calls.items())),
        "cost_usd": {k: round(v, 7) for k, v in cost.items()},
        "total_usd": round(sum(cost.values()), 7),
        "entered": dict(sorted(entered.items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--chunk-rows", type=int, default=10_000)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    os.environ.setdefault("MYSQL_PASSWORD", PASSWORD)

    from myshift.local import sample
    from myshift.local.engine import DEFAULT_WAREHOUSE_DSN, LocalEngine

    tables = {n: f"{DATABASE}.orders_{n}_chunks" for n in args.chunks}
    mysql = pymysql.connect(**MYSQL, password=PASSWORD, autocommit=True)
    for n, qualified in tables.items():
        print(f"seeding {qualified}: {n * args.chunk_rows:,} rows", file=sys.stderr, flush=True)
        sample.seed(mysql, DATABASE, qualified.split(".")[1], n * args.chunk_rows)
    mysql.close()

    dsn = os.environ.get("MYSHIFT_LOCAL_WAREHOUSE_DSN", DEFAULT_WAREHOUSE_DSN)
    dsn = dsn.rsplit("/", 1)[0] + "/myshift_warehouse_cost"
    with psycopg.connect(dsn.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS myshift_warehouse_cost WITH (FORCE)")
        conn.execute("CREATE DATABASE myshift_warehouse_cost")

    memory = lambda_memory_mb()
    clock = HandlerClock()
    with tempfile.TemporaryDirectory() as tmp:
        pipelines = Path(tmp)
        (pipelines / f"{PIPELINE}.yml").write_text(
            pipeline_yaml(list(tables.values()), args.chunk_rows)
        )
        # In-process handlers (no worker processes): the clock wraps them in this process.
        engine = LocalEngine(
            warehouse_dsn=dsn,
            pipelines_dir=pipelines,
            poll_seconds=1,
            state_table="cost-state",
            workers=0,
        )
        engine.start()
        try:
            assert engine.stack is not None
            clock.install([f.handler.rsplit(".", 1)[0] for f in engine.stack.functions.values()])
            results = []
            for n, qualified in tables.items():
                print(f"sync {qualified} ({n} chunks)", file=sys.stderr, flush=True)
                outcome = run(engine, {"pipeline": PIPELINE, "tables": [qualified]})
                results.append(figures(f"{n} chunks", outcome["entered"], *clock.take(), memory))
            first = next(iter(tables.values()))
            print(f"sync {first} again (nothing new)", file=sys.stderr, flush=True)
            outcome = run(engine, {"pipeline": PIPELINE, "tables": [first]})
            results.append(figures("nothing new", outcome["entered"], *clock.take(), memory))
        finally:
            engine.stop()

    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"\nCost of one sync run of one table ({args.chunk_rows:,} rows per chunk), local engine")
    print(
        f"{'run':>12} {'transitions':>11} {'polls':>5} {'invocations':>11} "
        f"{'Lambda s':>9} {'GB-s':>7} {'SFN $':>9} {'Lambda $':>9} {'total $':>9}"
    )
    for r in results:
        lam = r["cost_usd"]["lambda_compute"] + r["cost_usd"]["lambda_requests"]
        print(
            f"{r['run']:>12} {r['transitions']:>11} {r['load_polls']:>5} {r['invocations']:>11} "
            f"{r['lambda_seconds']:>9.2f} {r['gb_seconds']:>7.2f} "
            f"{r['cost_usd']['step_functions']:>9.6f} {lam:>9.6f} {r['total_usd']:>9.6f}"
        )
    if len(results) >= 3:
        a, b = results[0], results[-2]
        chunks_a, chunks_b = args.chunks[0], args.chunks[-1]
        if chunks_b != chunks_a:
            per_chunk = (b["transitions"] - a["transitions"]) / (chunks_b - chunks_a)
            print(f"\nper extra chunk: {per_chunk:.1f} transitions")
    print("\nLambda seconds by function:")
    for r in results:
        print(f"  {r['run']:>12}: {r['seconds_by_function']}  calls {r['calls_by_function']}")
    print(f"\nmemory (infra/functions.py): {memory}")


if __name__ == "__main__":
    main()
