"""A run that skipped locked tables reports it as metrics (in Lambda), not as an error."""

from __future__ import annotations

import pytest
from myshift.handlers import observability


@pytest.fixture()
def in_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "myshift-state")
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    yield
    observability.metrics.provider.clear_metrics()


def _values(name: str) -> list[float]:
    return list(observability.metrics.metric_set.get(name, {}).get("Value", []))


@pytest.mark.usefixtures("in_lambda")
def test_a_wholly_skipped_run_counts_as_a_skipped_run() -> None:
    observability.record_skipped("orders", {"status": "skipped", "tables_skipped": 3})
    assert _values(observability.RUNS_SKIPPED) == [1.0]
    assert _values(observability.TABLES_SKIPPED) == [3.0]
    assert observability.metrics.dimension_set["pipeline"] == "orders"


@pytest.mark.usefixtures("in_lambda")
def test_a_run_that_skipped_some_tables_is_no_skipped_run() -> None:
    observability.record_skipped("orders", {"status": "succeeded", "tables_skipped": 1})
    assert _values(observability.RUNS_SKIPPED) == [0.0]
    assert _values(observability.TABLES_SKIPPED) == [1.0]


def test_outside_lambda_nothing_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    observability.record_skipped("orders", {"status": "skipped", "tables_skipped": 1})
    assert not observability.metrics.metric_set
