"""Powertools for the handlers: the logger, metrics, the tracer and `instrumented`.

- `logger`: JSON lines, no event payloads; `tag(...)` adds keys for one invocation.
- `metrics`: CloudWatch EMF in namespace $POWERTOOLS_METRICS_NAMESPACE ("Myshift"),
  dimensions `service`, `pipeline`, `table`. The `record_*` helpers are the only way
  the handlers add metrics.
- `tracer`: X-Ray through Powertools (boto calls become subsegments).
- `instrumented`: the one decorator of every handler: Lambda context and correlation
  id (the execution name = run id) on every log line, tracing, one metrics flush.

In Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) metrics are flushed as one EMF line per
invocation. Anywhere else — the local engine runs the handlers in-process on threads,
the tests call them directly — metrics are neither recorded nor printed and tracing
is off, so nothing spams stdout and no shared metric set is touched from threads.
`POWERTOOLS_METRICS_DISABLED=true` / `POWERTOOLS_TRACE_DISABLED=true` switch them off
in Lambda too.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

SERVICE = "myshift"
DEFAULT_NAMESPACE = "Myshift"

# Metric names (namespace DEFAULT_NAMESPACE, dimensions service/pipeline/table): the
# dashboard and alarms refer to these.
ROWS_EXTRACTED = "RowsExtracted"
BYTES_WRITTEN = "BytesWritten"
CHUNK_SECONDS = "ChunkSeconds"
ROWS_LOADED = "RowsLoaded"
FRESHNESS_LAG_SECONDS = "FreshnessLagSeconds"
# Runs that found every table locked by a run still going (dimension pipeline only), and
# the tables a run skipped so: an overlapping schedule, not a failure.
RUNS_SKIPPED = "RunsSkipped"
TABLES_SKIPPED = "TablesSkipped"
# The verification of a table's run (myshift.verification); the alarm watches the first.
VERIFICATION_MISMATCH = "VerificationMismatch"
VERIFICATION_COUNTS = {
    "VerifiedRows": "verified_rows",
    "NewerRows": "newer_rows",
    "DeletedInSourceRows": "deleted_in_source",
    "MissingRows": "missing_rows",
    "DuplicatedRows": "duplicated_rows",
    "DifferingRows": "differing_rows",
}
DIMENSIONS = ("service", "pipeline", "table")

logger = Logger(service=SERVICE)
metrics = Metrics(
    service=SERVICE, namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE
)

_TRUE = ("1", "true", "yes", "on", "y", "t")
Event = TypeVar("Event")
Result = TypeVar("Result")


def in_lambda() -> bool:
    """True inside AWS Lambda (the local engine never sets AWS_LAMBDA_FUNCTION_NAME)."""
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def _switched_off(variable: str) -> bool:
    return os.environ.get(variable, "").strip().lower() in _TRUE


def metrics_enabled() -> bool:
    """Metrics are recorded and flushed in Lambda only, unless switched off there."""
    return in_lambda() and not _switched_off("POWERTOOLS_METRICS_DISABLED")


def _make_tracer() -> Any:
    """Powertools' Tracer; disabled outside Lambda, None without aws-xray-sdk.

    `disabled=None` in Lambda leaves POWERTOOLS_TRACE_DISABLED to Powertools. Only
    botocore is patched: every AWS call is a subsegment; SQL is timed by the handler's
    own segment.
    """
    try:
        import aws_xray_sdk  # noqa: F401  (the layer must ship aws-xray-sdk)
    except ImportError:  # pragma: no cover - a layer without it still runs, untraced
        if in_lambda():
            logger.warning("aws-xray-sdk is not installed: Powertools tracing is off")
        return None
    from aws_lambda_powertools import Tracer

    return Tracer(
        service=SERVICE,
        disabled=True if not in_lambda() else None,
        patch_modules=("botocore",),
    )


tracer = _make_tracer()

# The correlation id of the invocation running on this thread (the local engine runs
# concurrent invocations on threads of one process).
_invocation = threading.local()


def tag(**keys: Any) -> None:
    """Keys on every log line of this invocation only.

    Thread-local: the local engine runs concurrent invocations on threads of one
    process, and a warm Lambda must not carry the previous invocation's keys. The
    invocation's correlation id (set by `instrumented`) is kept.
    """
    logger.thread_safe_clear_keys()
    correlation = getattr(_invocation, "correlation_id", None)
    if correlation:
        keys = {"correlation_id": correlation, **keys}
    logger.thread_safe_append_keys(**keys)


def correlation_id(event: Any) -> str | None:
    """The run id (= the execution name) an event belongs to, if it carries one.

    validate_input gets `execution_name`; plan/extract `run_id`; load/state
    `table.run_id` or `run.run_id`; summarize_run its results' `run_id`; an
    EventBridge event (s3clean) its `id`.
    """
    if not isinstance(event, Mapping):
        return None
    candidates: list[Any] = [event.get("execution_name"), event.get("run_id")]
    for nested in ("table", "run"):
        value = event.get(nested)
        if isinstance(value, Mapping):
            candidates.append(value.get("run_id"))
    results = event.get("results")
    if isinstance(results, list) and results and isinstance(results[0], Mapping):
        candidates.append(results[0].get("run_id"))
    if event.get("source") == "aws.events":
        candidates.append(event.get("id"))
    for candidate in candidates:
        if isinstance(candidate, str) and candidate:
            return candidate
    return None


def instrumented(handler: Callable[[Event, Any], Result]) -> Callable[[Event, Any], Result]:
    """Wrap a Lambda handler: logger context + correlation id, tracing, metrics flush.

    Replaces `@instrumented`.
    Outside Lambda the tracer and the metrics are skipped entirely.
    """

    @functools.wraps(handler)
    def tagged(event: Event, context: Any) -> Result:
        tag()  # after the logger's state is cleared: the correlation id, no stale keys
        return handler(event, context)

    logged = logger.inject_lambda_context(log_event=False, clear_state=True)(tagged)
    traced = (
        tracer.capture_lambda_handler(logged, capture_response=False)
        if tracer is not None
        else logged
    )

    @functools.wraps(handler)
    def wrapper(event: Event, context: Any) -> Result:
        _invocation.correlation_id = correlation_id(event)
        try:
            if not in_lambda():
                return logged(event, context)
            try:
                return traced(event, context)
            finally:
                flush_metrics()
        finally:
            _invocation.correlation_id = None

    return wrapper


def flush_metrics() -> None:
    """Print this invocation's metrics as one EMF line (Lambda), or drop them.

    Not `log_metrics`: it warns on every invocation that records nothing (most do).
    """
    if metrics_enabled() and metrics.metric_set:
        metrics.flush_metrics(raise_on_empty_metrics=False)
    else:
        metrics.provider.clear_metrics()


def _dimensions(pipeline: str, table: str) -> None:
    for name, value in (("pipeline", pipeline), ("table", table)):
        if metrics.dimension_set.get(name) != value:
            metrics.add_dimension(name=name, value=value)


def record_chunk_metrics(
    pipeline: str, table: str, *, rows: int, bytes_written: int, seconds: float
) -> None:
    """One extracted chunk: rows read, Parquet bytes written, seconds it took."""
    if not metrics_enabled():
        return
    _dimensions(pipeline, table)
    metrics.add_metric(name=ROWS_EXTRACTED, unit=MetricUnit.Count, value=rows)
    metrics.add_metric(name=BYTES_WRITTEN, unit=MetricUnit.Bytes, value=bytes_written)
    metrics.add_metric(name=CHUNK_SECONDS, unit=MetricUnit.Seconds, value=seconds)


def record_load_metrics(pipeline: str, table: str, *, rows_loaded: int) -> None:
    """One committed load: the rows it staged into Redshift."""
    if not metrics_enabled():
        return
    _dimensions(pipeline, table)
    metrics.add_metric(name=ROWS_LOADED, unit=MetricUnit.Count, value=rows_loaded)


def record_skipped(pipeline: str, outcome: Mapping[str, Any]) -> None:
    """A run that skipped tables another run holds (`summarize_run`'s outcome)."""
    if not metrics_enabled():
        return
    if metrics.dimension_set.get("pipeline") != pipeline:
        metrics.add_dimension(name="pipeline", value=pipeline)
    metrics.add_metric(
        name=TABLES_SKIPPED, unit=MetricUnit.Count, value=int(outcome["tables_skipped"])
    )
    metrics.add_metric(
        name=RUNS_SKIPPED, unit=MetricUnit.Count, value=int(outcome["status"] == "skipped")
    )


def record_freshness(pipeline: str, table: str, lag_seconds: float | None) -> None:
    """How far the warehouse is behind the source after a run (None: not a time cursor)."""
    if lag_seconds is None or not metrics_enabled():
        return
    _dimensions(pipeline, table)
    metrics.add_metric(
        name=FRESHNESS_LAG_SECONDS, unit=MetricUnit.Seconds, value=max(0.0, lag_seconds)
    )


def _as_utc(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def freshness_lag_seconds(item: Mapping[str, Any], now: str | dt.datetime) -> float | None:
    """Seconds between `now` and the newest source time the warehouse now holds.

    A run that went to its frozen bound (`bound`) holds everything up to it; a run cut
    short by `max_chunks` only up to its last key's cursor (`upper_key[0]`). None when
    the cursor is not a time. Source times are read as UTC: exact for TIMESTAMP cursors
    and for DATETIME on a server running in UTC (the RDS default).
    """
    capped = item.get("max_chunks") is not None and int(item.get("chunk_count") or 0) >= int(
        item["max_chunks"]
    )
    upper_key = item.get("upper_key") or [None]
    reached = _as_utc(upper_key[0] if capped else item.get("bound") or upper_key[0])
    current = _as_utc(now)
    if reached is None or current is None:
        return None
    return (current - reached).total_seconds()


def record_verification(pipeline: str, table: str, result: Any) -> None:
    """A table's verification: one EMF line of its own, in Lambda and in the local twin.

    Not the shared metric set (kept off outside Lambda for threads' sake): an
    EphemeralMetrics instance of this call only, flushed at once, so the local engine's
    function log shows the very line the alarm's metric comes from in AWS.
    `POWERTOOLS_METRICS_DISABLED=true` switches it off. Dimensions: pipeline, table and
    service; VerificationMismatch also by service alone (what the alarm watches).
    """
    if _switched_off("POWERTOOLS_METRICS_DISABLED"):
        return
    emf = EphemeralMetrics(service=SERVICE, namespace=metrics.namespace)
    emf.add_dimension(name="pipeline", value=pipeline)
    emf.add_dimension(name="table", value=table)
    emf.add_metric(name=VERIFICATION_MISMATCH, unit=MetricUnit.Count, value=int(result.mismatch))
    record = result.as_dict()
    for name, field in VERIFICATION_COUNTS.items():
        emf.add_metric(name=name, unit=MetricUnit.Count, value=int(record.get(field) or 0))
    emf.flush_metrics()
    # Again by service alone: one alarm watches every pipeline and table of the stack.
    overall = EphemeralMetrics(service=SERVICE, namespace=metrics.namespace)
    overall.add_metric(
        name=VERIFICATION_MISMATCH, unit=MetricUnit.Count, value=int(result.mismatch)
    )
    overall.flush_metrics()
