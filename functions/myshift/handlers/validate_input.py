"""Lambda: validate the execution input and expand it into per-table items."""

from typing import Any

from myshift import runtime
from myshift.handlers.observability import instrumented
from myshift.settings import current_settings
from myshift.workflow import parse_execution_input, run_items


@instrumented
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = parse_execution_input(event.get("input"))
    pipeline = runtime.pipeline(request.pipeline)
    return run_items(request, pipeline, event["execution_name"], current_settings().poll_seconds)
