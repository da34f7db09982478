"""Step Functions' limits, enforced and measured in the local engine as AWS applies them.

What moto lacks, with the AWS documentation behind each rule:
- 25,000 events per execution history ("Step Functions service quotas"): past it the
  execution fails (`States.Runtime`, "The execution reached the maximum number of
  history events (25000)." as AWS reports it). A Distributed Map's child executions
  each have their own history; moto records all of them in one discarded list, so
  each child gets its own here.
- `States.ALL` catches neither `States.DataLimitExceeded` nor `States.Runtime` ("Error
  handling in Step Functions": "States.ALL ... can't catch the
  States.DataLimitExceeded terminal error or Runtime error types"); moto's catches
  every error, so an oversized payload would be caught and recorded as a table's
  failure locally while AWS fails the whole execution.
The 256 KiB payload quota itself moto already checks on state and task outputs.

`stats()` reports each history's event count, its state transitions and its largest
input/output, so tests can measure a run and project it to 1,000 tables of 1,000 chunks,
and the cost benchmark can count transitions in child executions too.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

MAX_HISTORY_EVENTS = 25_000
MAX_PAYLOAD_BYTES = 256 * 1024
HISTORY_LIMIT_CAUSE = (
    f"The execution reached the maximum number of history events ({MAX_HISTORY_EVENTS})."
)
# An execution-ending event does not trip the limit: the execution ends anyway.
_TERMINAL_EVENTS = frozenset(
    {"ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut", "ExecutionSucceeded"}
)
_PAYLOAD_FIELDS = ("input", "output", "parameters")


class HistoryLimitExceeded(Exception):
    """An execution's history would exceed MAX_HISTORY_EVENTS (fails it: States.Runtime)."""


@dataclass
class HistoryStats:
    """One execution history (a run, or one child of a Distributed Map)."""

    kind: str  # "execution" | "map child"
    events: int = 0
    exceeded: bool = False
    largest_payload: int = 0
    largest_event: str = ""
    first_state: str = ""  # the first state entered: which workflow this history is
    entered: Counter[str] = field(default_factory=Counter)  # state transitions, by state


_stats: dict[int, HistoryStats] = {}
_lock = threading.Lock()
_installed = False


def reset_stats() -> None:
    """Forget what was measured so far (a test measures one run)."""
    with _lock:
        _stats.clear()


def stats() -> list[HistoryStats]:
    """Every history recorded since the last reset."""
    with _lock:
        return [HistoryStats(**{**vars(s), "entered": Counter(s.entered)}) for s in _stats.values()]


def _payload_size(details: Any) -> tuple[int, str]:
    largest, field = 0, ""
    if not isinstance(details, dict):
        return largest, field
    for binding, body in details.items():
        if not isinstance(body, dict):
            continue
        for name in _PAYLOAD_FIELDS:
            value = body.get(name)
            if isinstance(value, str):
                size = len(value.encode("utf-8"))
                if size > largest:
                    largest, field = size, f"{binding}.{name}"
    return largest, field


def install() -> None:
    """Patch moto's Step Functions interpreter (idempotent; relies on the pinned moto)."""
    global _installed
    if _installed:
        return
    from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import (
        ErrorEqualsDecl,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (  # noqa: E501
        distributed_item_processor_worker as distributed,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager

    original_init = EventManager.__init__
    original_add = EventManager.add_event

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        with _lock:
            _stats[id(self)] = HistoryStats(kind="execution")

    def add_event(self: Any, context: Any, event_type: Any, event_details: Any = None, **kw: Any):
        with _lock:
            counted = _stats.setdefault(id(self), HistoryStats(kind="execution"))
            name = str(event_type)
            if counted.events >= MAX_HISTORY_EVENTS and not counted.exceeded:
                # Once: the state that would write it fails the execution (as AWS does);
                # the events of that failure are still recorded.
                counted.exceeded = True
                if name not in _TERMINAL_EVENTS:
                    raise HistoryLimitExceeded(HISTORY_LIMIT_CAUSE)
            counted.events += 1
            if isinstance(event_details, dict) and "stateEnteredEventDetails" in event_details:
                state_name = str(event_details["stateEnteredEventDetails"].get("name") or "")
                counted.entered[state_name] += 1  # what Step Functions Standard bills
                counted.first_state = counted.first_state or state_name
            size, field = _payload_size(event_details)
            if size > counted.largest_payload:
                counted.largest_payload, counted.largest_event = size, f"{name} {field}"
        return original_add(self, context, event_type, event_details, **kw)

    EventManager.__init__ = init  # type: ignore[method-assign]
    EventManager.add_event = add_event  # type: ignore[method-assign]

    worker = distributed.DistributedItemProcessorWorker
    original_job = worker._eval_job

    def eval_job(self: Any, env: Any, job: Any) -> None:
        # A child execution of a Distributed Map: a history of its own, as in AWS.
        env.event_manager = EventManager()
        with _lock:
            _stats[id(env.event_manager)].kind = "map child"
        original_job(self, env, job)

    worker._eval_job = eval_job  # type: ignore[method-assign]

    uncatchable = {
        StatesErrorName(typ=StatesErrorNameType.StatesStatesDataLimitExceeded).error_name,
        StatesErrorName(typ=StatesErrorNameType.StatesRuntime).error_name,
    }
    original_matches = ErrorEqualsDecl._eval_body
    states_all = ErrorEqualsDecl._STATE_ALL_ERROR

    def matches(self: Any, env: Any) -> None:
        error = getattr(env.stack[-1], "error_name", None) if env.stack else None
        if states_all in self.error_names and error in uncatchable:
            env.stack.pop()
            env.stack.append(False)
            return
        original_matches(self, env)

    ErrorEqualsDecl._eval_body = matches  # type: ignore[method-assign]
    _propagate_states_errors()
    _installed = True


def _propagate_states_errors() -> None:
    """A Parallel branch or Map iteration that fails with a `States.` error fails its
    state with that error, as in AWS; moto wraps it in a custom error name, which may
    not start with `States.`, and fails the execution with an unrelated ValueError."""
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
        CustomErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
        iteration_worker,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import (
        branches_decl,
    )

    def error_name(error_name: str) -> Any:
        if error_name.startswith("States."):
            return StatesErrorName.from_name(error_name)
        return CustomErrorName(error_name=error_name)

    for module in (iteration_worker, branches_decl):
        module.CustomErrorName = error_name  # type: ignore[attr-defined]
