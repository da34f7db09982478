"""Warm worker processes that run the local engine's Lambda invocations.

Like Lambda's warm execution environments: an invocation runs in a process that has
imported the handlers once and keeps its clients and its MySQL connection (`runtime`)
from one invocation to the next, one invocation at a time. Concurrent chunk extractions
then run on separate cores instead of sharing one GIL with moto (the Step Functions
interpreter, S3, DynamoDB) and with each other.

The engine decides injected faults before and after a call (`engine.Fault`), so they
behave as with in-process handlers. Each call carries the engine process's environment
(tests change variables between runs) and brings back what the handler printed, which
the engine writes to its own stdout/stderr (where tests capture the Lambdas' log lines).
"""

from __future__ import annotations

import importlib
import io
import json
import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any


class LambdaContext:
    """The few attributes of a Lambda context that Powertools reads."""

    def __init__(self, function_name: str, function_arn: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 1024
        self.invoked_function_arn = function_arn
        self.aws_request_id = "local"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 900_000


def error_payload(exc: BaseException) -> str:
    """An exception in Lambda's shape: Retry/Catch match on `errorType`, the class name."""
    return json.dumps(
        {
            "errorType": type(exc).__name__,
            "errorMessage": str(exc),
            "stackTrace": traceback.format_exception(exc)[-5:],
        }
    )


def run_handler(
    handler: str,
    function_name: str,
    function_arn: str,
    event: Any,
    environment: dict[str, str] | None = None,
) -> tuple[str, bool]:
    """Run `module.attribute` on the event: (result JSON, False) or (error JSON, True).

    `environment`: the function's variables and its role's credentials, as Lambda sets
    them for its process. In this process (the engine's, with `workers=0`) they are set
    for the invocation only, one invocation at a time.
    """
    if environment is None:
        return _run(handler, function_name, function_arn, event)
    with _in_process:
        before = dict(os.environ)
        _sync_environment({**before, **environment})
        try:
            return _run(handler, function_name, function_arn, event)
        finally:
            _sync_environment(before)


_in_process = threading.Lock()


def _run(handler: str, function_name: str, function_arn: str, event: Any) -> tuple[str, bool]:
    module_name, _, attribute = handler.rpartition(".")
    try:
        function = getattr(importlib.import_module(module_name), attribute)
        return json.dumps(function(event, LambdaContext(function_name, function_arn))), False
    except Exception as exc:
        return error_payload(exc), True


# --- the worker process ------------------------------------------------------------


class _Output(io.TextIOBase):
    """A worker's stdout or stderr: kept until the invocation's result is sent."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._lock = threading.Lock()  # the extractor's reader thread may print too

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._parts.append(text)
        return len(text)

    def drain(self) -> str:
        with self._lock:
            text = "".join(self._parts)
            self._parts.clear()
        return text


def _sync_environment(environ: dict[str, str]) -> None:
    """Make this process's environment the engine's (settings are re-read if it changed)."""
    current = os.environ
    if len(current) == len(environ) and all(current.get(k) == v for k, v in environ.items()):
        return
    for name in [name for name in current if name not in environ]:
        del current[name]
    for name, value in environ.items():
        if current.get(name) != value:
            current[name] = value
    from myshift.settings import current_settings

    current_settings.cache_clear()


def _create_clients() -> None:
    """Create the AWS clients a warm Lambda would hold from earlier invocations.

    Each takes tens of milliseconds of CPU (botocore loads its service model); without
    this the first invocations of every worker pay it in the middle of a run.
    """
    try:
        from myshift import runtime

        runtime.s3()
        runtime.state_table()
        runtime.redshift_data()
    except Exception:  # then the first invocation creates them and reports the error
        pass


def _serve(requests: Connection, replies: Connection, handlers: tuple[str, ...]) -> None:
    """A worker's life: import the handlers, then run one invocation per request."""
    out, err = _Output(), _Output()
    # Before the imports: Powertools' log handler keeps the stdout of its creation.
    sys.stdout, sys.stderr = out, err
    for handler in handlers:
        try:
            importlib.import_module(handler.rpartition(".")[0])
        except Exception:  # each invocation then reports it, in Lambda's shape
            continue
    _create_clients()
    replies.send(os.getpid())
    while True:
        try:
            request = requests.recv()
        except (EOFError, OSError):  # the engine is gone
            return
        if request is None:
            return
        handler, function_name, function_arn, event, environ = request
        _sync_environment(environ)
        payload, errored = _run(handler, function_name, function_arn, event)
        replies.send((payload, errored, out.drain(), err.drain()))


def main(argv: list[str]) -> None:
    """Entry point of a worker process: `<requests fd> <replies fd> <handler>...`."""
    requests = Connection(int(argv[0]), writable=False)
    replies = Connection(int(argv[1]), readable=False)
    _serve(requests, replies, tuple(argv[2:]))


# --- the engine's side ---------------------------------------------------------------


class WorkerCrashed(Exception):
    """A worker process died during an invocation (Lambda's Runtime.ExitError)."""


class _Worker:
    """One worker process, started with the engine's interpreter and `sys.path`.

    A plain subprocess rather than multiprocessing's spawn, which would re-run the
    engine process's main script (a bench, pytest, a user's script) in every worker.
    """

    def __init__(self, handlers: tuple[str, ...]) -> None:
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        code = (
            "import sys; sys.path[:0] = sys.argv[1].split(sys.argv[2]); "
            "from myshift.local.workers import main; main(sys.argv[3:])"
        )
        package_root = str(Path(__file__).resolve().parents[2])  # holds `myshift`
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    code,
                    os.pathsep.join([package_root, *sys.path]),
                    os.pathsep,
                    str(request_read),
                    str(reply_write),
                    *handlers,
                ],
                pass_fds=(request_read, reply_write),
                stdin=subprocess.DEVNULL,
            )
        finally:
            os.close(request_read)
            os.close(reply_write)
        self.requests = Connection(request_write, readable=False)
        self.replies = Connection(reply_read, writable=False)

    def wait_ready(self) -> None:
        try:
            self.replies.recv()
        except (EOFError, OSError):
            code = self.process.wait()
            raise WorkerCrashed(f"Lambda worker exited while starting (status {code})") from None

    def call(self, request: tuple) -> tuple[str, bool, str, str]:
        try:
            self.requests.send(request)
            return self.replies.recv()  # type: ignore[no-any-return]
        except (EOFError, OSError):
            code = self.process.wait()
            raise WorkerCrashed(f"Lambda worker exited (status {code})") from None

    def stop(self) -> None:
        try:
            self.requests.send(None)
        except OSError:
            pass
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.requests.close()
        self.replies.close()


class LambdaWorkers:
    """A pool of warm worker processes; `invoke` runs one invocation on a free one.

    `warm` workers start (and import the handlers) in `start`; more start on demand, up
    to `limit`, when every worker is busy (a cold start); beyond that an invocation
    waits for a free worker. A worker that dies is replaced by the next demand.
    """

    def __init__(self, handlers: Iterable[str], *, warm: int, limit: int) -> None:
        if warm < 1 or limit < warm:
            raise ValueError(f"need 1 <= warm <= limit, got warm={warm}, limit={limit}")
        self.handlers = tuple(handlers)
        self.warm = warm
        self.limit = limit
        self._idle: list[_Worker] = []
        self._count = 0
        self._changed = threading.Condition()
        self._closed = False

    def start(self) -> None:
        """Start the warm workers and wait until each has imported the handlers."""
        workers = [_Worker(self.handlers) for _ in range(self.warm)]
        for worker in workers:
            worker.wait_ready()
        with self._changed:
            self._idle.extend(workers)
            self._count += len(workers)

    def stop(self) -> None:
        """Stop every idle worker; busy ones stop when their invocation returns."""
        with self._changed:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._changed.notify_all()
        for worker in idle:
            worker.stop()

    @property
    def size(self) -> int:
        """Workers running now (idle or busy)."""
        return self._count

    def invoke(
        self,
        handler: str,
        function_name: str,
        function_arn: str,
        event: Any,
        environment: dict[str, str] | None = None,
    ) -> tuple[str, bool]:
        """Run the handler in a worker: (result JSON, False) or (error JSON, True).

        The worker's environment is the engine's, with `environment` (the function's
        variables and credentials) over it.
        """
        try:
            worker = self._acquire()
        except WorkerCrashed as exc:
            return error_payload(exc), True
        request = (
            handler,
            function_name,
            function_arn,
            event,
            {**os.environ, **(environment or {})},
        )
        try:
            payload, errored, out, err = worker.call(request)
        except WorkerCrashed as exc:
            self._discard(worker)
            return error_payload(exc), True
        self._release(worker)
        if out:
            sys.stdout.write(out)
            sys.stdout.flush()
        if err:
            sys.stderr.write(err)
            sys.stderr.flush()
        return payload, errored

    def _acquire(self) -> _Worker:
        with self._changed:
            while True:
                if self._closed:
                    raise RuntimeError("the local engine's Lambda workers are stopped")
                if self._idle:
                    return self._idle.pop()
                if self._count < self.limit:
                    self._count += 1
                    break
                self._changed.wait()
        try:  # a cold start, outside the lock: the others keep running
            worker = _Worker(self.handlers)
            worker.wait_ready()
        except BaseException:
            with self._changed:
                self._count -= 1
                self._changed.notify()
            raise
        return worker

    def _release(self, worker: _Worker) -> None:
        with self._changed:
            if not self._closed:
                self._idle.append(worker)
                self._changed.notify()
                return
            self._count -= 1
        worker.stop()

    def _discard(self, worker: _Worker) -> None:
        worker.stop()
        with self._changed:
            self._count -= 1
            self._changed.notify()
