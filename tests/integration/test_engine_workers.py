"""The local engine's warm Lambda worker processes (real processes, no services).

The handlers below run in the workers, which import this module by name.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from myshift.local.workers import LambdaContext, LambdaWorkers

HANDLER = f"{__name__}.handler"
_invocations = 0  # per worker process: survives between invocations of a warm worker


def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """What the tests ask of a worker."""
    global _invocations
    _invocations += 1
    action = event.get("action")
    if action == "sleep":
        time.sleep(event["seconds"])
    elif action == "print":
        print("to stdout", event["text"])
        print("to stderr", event["text"], file=sys.stderr)
    elif action == "fail":
        raise LookupError("asked to fail")
    elif action == "exit":
        os._exit(3)
    return {
        "pid": os.getpid(),
        "invocations": _invocations,
        "variable": os.environ.get("MYSHIFT_TEST_VARIABLE"),
        "function": context.function_name,
        "arn": context.invoked_function_arn,
    }


@pytest.fixture()
def workers() -> Iterator[LambdaWorkers]:
    pool = LambdaWorkers([HANDLER], warm=2, limit=3)
    pool.start()
    yield pool
    pool.stop()


def call(pool: LambdaWorkers, **event: Any) -> tuple[dict[str, Any], bool]:
    payload, errored = pool.invoke(HANDLER, "myshift-test", "arn:test", event)
    return json.loads(payload), errored


def concurrently(pool: LambdaWorkers, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    results: list[Any] = [None] * len(events)

    def run(i: int) -> None:
        results[i] = call(pool, **events[i])[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(events))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_a_worker_stays_warm_between_invocations(workers: LambdaWorkers) -> None:
    first, errored = call(workers)
    assert not errored
    assert first["function"] == "myshift-test" and first["arn"] == "arn:test"
    assert first["pid"] != os.getpid()
    second, _ = call(workers)
    assert second["pid"] == first["pid"]  # the idle worker used last is used again
    assert second["invocations"] == first["invocations"] + 1
    assert workers.size == 2


def test_concurrent_invocations_run_in_separate_processes(workers: LambdaWorkers) -> None:
    results = concurrently(workers, [{"action": "sleep", "seconds": 0.3}] * 2)
    assert len({r["pid"] for r in results}) == 2
    assert workers.size == 2  # both were warm: no cold start


def test_beyond_the_warm_ones_workers_start_on_demand_up_to_the_limit(
    workers: LambdaWorkers,
) -> None:
    results = concurrently(workers, [{"action": "sleep", "seconds": 0.5}] * 4)
    assert len({r["pid"] for r in results}) == 3  # the limit: the fourth waited
    assert workers.size == 3


def test_the_environment_of_the_engine_process_is_the_workers(
    workers: LambdaWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MYSHIFT_TEST_VARIABLE", "one")
    assert call(workers)[0]["variable"] == "one"
    monkeypatch.setenv("MYSHIFT_TEST_VARIABLE", "two")
    assert call(workers)[0]["variable"] == "two"
    monkeypatch.delenv("MYSHIFT_TEST_VARIABLE")
    assert call(workers)[0]["variable"] is None


def test_an_exception_comes_back_in_lambdas_shape(workers: LambdaWorkers) -> None:
    payload, errored = call(workers, action="fail")
    assert errored
    assert payload["errorType"] == "LookupError"
    assert payload["errorMessage"] == "asked to fail"
    assert call(workers)[1] is False  # the worker goes on


def test_what_a_handler_prints_reaches_the_engines_streams(
    workers: LambdaWorkers, capsys: pytest.CaptureFixture[str]
) -> None:
    call(workers, action="print", text="hello")
    captured = capsys.readouterr()
    assert "to stdout hello" in captured.out
    assert "to stderr hello" in captured.err


def test_a_worker_that_dies_is_an_error_and_is_replaced(workers: LambdaWorkers) -> None:
    payload, errored = call(workers, action="exit")
    assert errored
    assert payload["errorType"] == "WorkerCrashed"
    assert "status 3" in payload["errorMessage"]
    assert workers.size == 1
    assert call(workers)[1] is False
    results = concurrently(workers, [{"action": "sleep", "seconds": 0.3}] * 2)
    assert len({r["pid"] for r in results}) == 2  # a new one started
    assert workers.size == 2


def test_a_stopped_pool_refuses_invocations() -> None:
    pool = LambdaWorkers([HANDLER], warm=1, limit=1)
    pool.start()
    pool.stop()
    assert pool.size == 0
    with pytest.raises(RuntimeError, match="stopped"):
        call(pool)


def test_the_sizes_are_checked() -> None:
    with pytest.raises(ValueError, match="warm"):
        LambdaWorkers([HANDLER], warm=0, limit=1)
    with pytest.raises(ValueError, match="warm"):
        LambdaWorkers([HANDLER], warm=3, limit=2)


def test_a_handler_that_cannot_be_imported_fails_its_invocations_not_the_pool() -> None:
    pool = LambdaWorkers(["no_such_module.handler", HANDLER], warm=1, limit=1)
    pool.start()
    try:
        payload, errored = pool.invoke("no_such_module.handler", "f", "arn:test", {})
        assert errored and json.loads(payload)["errorType"] == "ModuleNotFoundError"
        assert call(pool)[1] is False
    finally:
        pool.stop()
