"""Which side of the watermark a failed table run marks failed (steps.failed_side)."""

from __future__ import annotations

import pytest
from myshift.payloads import TableItem
from myshift.steps import failed_side, failure_message

RUN = "run-2"
EXTRACTED_BY_THIS_RUN = {"last_run_id": RUN, "mysql_status": "success"}
EXTRACTED_BY_AN_EARLIER_RUN = {"last_run_id": "run-1", "mysql_status": "success"}


@pytest.mark.parametrize(
    ("mode", "run", "watermark", "side"),
    [
        # Failed before its extraction committed: the MySQL side.
        ("full", {}, EXTRACTED_BY_AN_EARLIER_RUN, "mysql_status"),
        ("backup_only", {"status": "extracting"}, EXTRACTED_BY_AN_EARLIER_RUN, "mysql_status"),
        # Extraction committed, the load failed: the Redshift side.
        ("full", {"status": "extracted"}, EXTRACTED_BY_THIS_RUN, "redshift_status"),
        # A redshift_only run never extracts: whatever failed is the load's.
        ("redshift_only", {}, EXTRACTED_BY_AN_EARLIER_RUN, "redshift_status"),
        ("redshift_only", {}, EXTRACTED_BY_THIS_RUN, "redshift_status"),
        # Everything committed before the failure (a lost lock release): nothing to mark.
        ("full", {"status": "succeeded"}, EXTRACTED_BY_THIS_RUN, None),
        ("redshift_only", {"status": "succeeded"}, EXTRACTED_BY_AN_EARLIER_RUN, None),
        ("backup_only", {"status": "extracted"}, EXTRACTED_BY_THIS_RUN, None),
    ],
)
def test_failed_side(mode: str, run: dict, watermark: dict, side: str | None) -> None:
    item = TableItem.model_validate(
        {"pipeline": "p", "table": "db.t", "run_id": RUN, "mode": mode}
        | {"limit": 10, "max_chunks": None, "poll_seconds": 1}
    )
    assert failed_side(item, run, watermark) == side


def test_failure_message_takes_the_lambda_error_message_on_one_line() -> None:
    cause = '{"errorMessage": "COPY failed:\\nline 2", "errorType": "LoadError"}'
    assert failure_message({"Error": "LoadError", "Cause": cause}) == (
        "LoadError",
        "COPY failed: line 2",
    )
