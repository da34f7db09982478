"""Which model each Lambda task of the sync workflow takes and returns (myshift.payloads),
and the check that a payload the workflow produced is what its model dumps back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from myshift import payloads as p

# (function, action) -> (where the model's part of the event is: None = the whole event,
# the model of that part, the model of the answer; None: not modelled).
TASKS: dict[tuple[str, str | None], tuple[str | None, type[p.Payload] | None, type[p.Payload]]] = {
    ("validate_input", None): ("input", None, p.Run),
    ("load", "prepare"): ("run", p.Run, p.Statement),
    ("load", "follow"): (None, p.Follow, p.Statement),
    ("load", "submit"): ("table", p.TableRun, p.Statement),
    ("load", "alters"): ("table", p.TableRun, p.AltersPlan),
    ("load", "execute"): ("table", p.AlterItem, p.Statement),
    ("load", "verify_submit"): ("table", p.TableRun, p.Statement),
    ("load", "verify_compare"): ("table", p.TableRun, p.Statement),
    ("load", "verify_collect"): ("table", p.TableRun, p.CollectedKeys),
    ("load", "deletes_submit"): ("table", p.TableRun, p.Statement),
    ("plan", None): (None, p.TableRun, p.TableRun),
    ("plan", "verify_source"): ("table", p.TableRun, p.VerifyDecision),
    ("plan", "verify_keys"): ("table", p.TableRun, p.Verified),
    ("extract", None): (None, p.ChunkTask, p.ChunkResult),
    ("state", "acquire_lock"): ("table", p.TableItem, p.TableRun),
    ("state", "record_failure"): ("table", p.FailedTable, p.TableSummary),
    ("state", "record_skipped"): ("table", p.TableRun, p.TableSummary),
    ("state", "release_lock"): ("table", p.TableRun, p.TableSummary),
    ("state", "commit_extraction"): ("table", p.TableRun, p.TableRun),
    ("state", "commit_alters"): ("table", p.TableRun, p.TableRun),
    ("state", "commit_load"): ("table", p.TableRun, p.TableRun),
    ("state", "record_empty_run"): ("table", p.TableRun, p.TableRun),
    ("state", "commit_deletes"): ("table", p.TableRun, p.TableRun),
    ("state", "summarize_run"): ("run", p.Run, p.RunOutcome),
}


@dataclass(frozen=True)
class Invocation:
    """One Lambda invocation of a sync run: its function, event and answer."""

    function: str  # the handler module's name: load, plan, extract, state, validate_input
    event: dict[str, Any]
    result: dict[str, Any]

    @property
    def task(self) -> tuple[str, str | None]:
        return self.function, self.event.get("action")

    @property
    def label(self) -> str:
        action = self.event.get("action")
        return f"{self.function}.{action}" if action else self.function

    def size(self) -> int:
        """The larger of the event and the answer, in bytes of JSON (as AWS counts)."""
        return max(len(json.dumps(self.event).encode()), len(json.dumps(self.result).encode()))


def round_trips(invocation: Invocation) -> None:
    """The event's part and the answer parse as their models and dump back unchanged."""
    where, event_model, result_model = TASKS[invocation.task]
    if event_model is not None:
        part = invocation.event if where is None else invocation.event[where]
        parsed = p.parse(event_model, part, invocation.label)
        assert parsed.dump() == part, invocation.label
    parsed_result = p.parse(result_model, invocation.result, f"{invocation.label} answer")
    assert parsed_result.dump() == invocation.result, invocation.label
