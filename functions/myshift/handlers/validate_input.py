"""Lambda: validate the execution input and expand it into per-table items."""

from typing import Any

from myshift import reconcile, runtime
from myshift.handlers.observability import instrumented
from myshift.settings import current_settings
from myshift.workflow import parse_execution_input, run_items


@instrumented
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    poll_seconds = current_settings().poll_seconds
    if event.get("action") == "reconcile":
        wanted = reconcile.parse_input(event.get("input"))
        return reconcile.run_items(
            wanted, runtime.pipeline(wanted.pipeline), event["execution_name"], poll_seconds
        )
    request = parse_execution_input(event.get("input"))
    pipeline = runtime.pipeline(request.pipeline)
    return run_items(request, pipeline, event["execution_name"], poll_seconds).dump()
