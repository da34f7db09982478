"""The local engine's Lambda hook: faults decided around the handler, Lambda's error shape.

Handlers run in this process here (no workers); `tests/integration/test_engine_workers.py`
runs them in worker processes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from myshift.errors import SourceUnavailableError
from myshift.local import engine
from myshift.local.engine import Fault, LocalEngine
from myshift.local.workers import LambdaContext, error_payload, run_handler

from infra.workflow import definition_placeholders

CALLS: list[dict[str, Any]] = []


def echo(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """A handler: records the call, returns the event and the context's function."""
    CALLS.append(event)
    return {"event": event, "function": context.function_name}


def fail(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    raise SourceUnavailableError("lost")


@dataclass
class _Function:
    """What `_invoke_lambda` reads of moto's LambdaFunction (no role: no credentials)."""

    function_name: str
    handler: str
    environment_vars: dict[str, str] = field(default_factory=dict)
    role: str = ""


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    CALLS.clear()
    LocalEngine.clear_faults()
    assert engine._workers is None  # no engine runs in unit tests: handlers run here
    yield
    LocalEngine.clear_faults()


def invoke(event: Any, handler: str = "echo") -> tuple[dict[str, Any], bool]:
    function = _Function("myshift-test", f"{__name__}.{handler}")
    payload, errored, logs = engine._invoke_lambda(function, event)
    assert logs == ""
    return json.loads(payload), errored


def test_a_handler_runs_on_the_event_as_json_or_dict() -> None:
    assert invoke({"a": 1}) == ({"event": {"a": 1}, "function": "myshift-test"}, False)
    assert invoke('{"b": 2}') == ({"event": {"b": 2}, "function": "myshift-test"}, False)


def test_an_exception_comes_back_in_lambdas_shape() -> None:
    payload, errored = invoke({}, "fail")
    assert errored
    assert payload["errorType"] == "SourceUnavailableError"
    assert payload["errorMessage"] == "lost"
    assert any("fail" in line for line in payload["stackTrace"])


def test_a_fault_before_replaces_the_call_and_counts() -> None:
    fault = LocalEngine.inject_fault(Fault("myshift-test", SourceUnavailableError("x"), times=2))
    assert invoke({"n": 1})[0]["errorType"] == "SourceUnavailableError"
    assert invoke({"n": 2})[1] is True
    assert invoke({"n": 3}) == ({"event": {"n": 3}, "function": "myshift-test"}, False)
    assert fault.fired == 2
    assert CALLS == [{"n": 3}]  # the failed calls never reached the handler


def test_a_fault_after_runs_the_handler_first() -> None:
    LocalEngine.inject_fault(Fault("myshift-test", SourceUnavailableError("x"), after=True))
    payload, errored = invoke({"n": 1})
    assert errored and payload["errorType"] == "SourceUnavailableError"
    assert CALLS == [{"n": 1}]


def test_when_selects_the_events_and_a_failing_when_is_an_error() -> None:
    fault = LocalEngine.inject_fault(
        Fault("myshift-test", SourceUnavailableError("x"), when=lambda e: e["n"] == 2)
    )
    assert invoke({"n": 1})[1] is False
    assert invoke({"n": 2})[1] is True
    assert fault.fired == 1
    LocalEngine.inject_fault(Fault("myshift-test", None, when=lambda e: e["missing"]))
    payload, errored = invoke({"n": 3})
    assert errored and payload["errorType"] == "KeyError"


def test_a_result_fault_is_a_stub() -> None:
    LocalEngine.inject_fault(Fault("myshift-test", None, result=lambda e: {"stub": e["n"]}))
    assert invoke({"n": 7}) == ({"stub": 7}, False)
    assert CALLS == []


def test_faults_of_other_functions_do_not_apply() -> None:
    LocalEngine.inject_fault(Fault("myshift-other", SourceUnavailableError("x")))
    assert invoke({"n": 1})[1] is False


def test_run_handler_reports_an_unknown_module_as_an_error() -> None:
    payload, errored = run_handler("no_such_module.handler", "f", "arn", {})
    assert errored
    assert json.loads(payload)["errorType"] == "ModuleNotFoundError"


def test_error_payload_keeps_the_last_frames() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError as exc:
        payload = json.loads(error_payload(exc))
    assert payload["errorType"] == "ValueError"
    assert payload["errorMessage"] == "bad\nvalue"
    assert 1 <= len(payload["stackTrace"]) <= 5


def test_default_workers_follows_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYSHIFT_LOCAL_WORKERS", "0")
    assert engine.default_workers() == 0
    assert LocalEngine().workers == 0
    monkeypatch.delenv("MYSHIFT_LOCAL_WORKERS")
    assert 2 <= engine.default_workers() <= 4
    assert LocalEngine(workers=3).max_workers == 4
    assert LocalEngine(workers=1, max_workers=2).max_workers == 2


def test_moto_keeps_parses_but_builds_each_execution_its_own_program() -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import (
        AmazonStateLanguageParser,
        ASLParserException,
    )
    from moto.stepfunctions.parser.asl.utils import json_path

    engine._skip_repeated_moto_work()
    engine._skip_repeated_moto_work()  # once is enough: a second call changes nothing
    substitutions = {
        name: f"arn:{name}" for name in definition_placeholders(engine.definition_file())
    }
    definition = engine.render_definition(substitutions)
    first_program, first_tree = AmazonStateLanguageParser.parse(definition)
    second_program, second_tree = AmazonStateLanguageParser.parse(definition)
    assert first_tree is second_tree
    assert first_program is not second_program
    with pytest.raises(ASLParserException):
        AmazonStateLanguageParser.parse('{"StartAt": ')
    with pytest.raises(ASLParserException):  # not kept: raised again
        AmazonStateLanguageParser.parse('{"StartAt": ')
    hits = json_path.parse.cache_info().hits  # type: ignore[attr-defined]
    assert json_path.extract_json("$.a.b", {"a": {"b": 1}}) == 1
    assert json_path.extract_json("$.a.b", {"a": {"b": 2}}) == 2
    assert json_path.parse.cache_info().hits > hits  # type: ignore[attr-defined]
