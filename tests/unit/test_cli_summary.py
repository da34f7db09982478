"""The run summary the CLI prints: one row per table, totals last, at any table count."""

from __future__ import annotations

import io

from myshift.cli.sync import TableSummary, summary_table
from rich.console import Console


def rendered(summaries: list[TableSummary], width: int = 120) -> list[str]:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None)
    console.print(summary_table("run r", summaries), crop=False)  # as the CLI prints it
    return [line for line in out.getvalue().splitlines() if line.strip()]


def verified(table: str, rows: int) -> TableSummary:
    return TableSummary(
        table=table,
        status="succeeded",
        rows_extracted=rows,
        files=1,
        rows_loaded=rows,
        source_rows=rows,
        target_rows=rows,
        duplicate_keys=0,
        verification={"status": "verified", "source_rows": rows, "target_rows": rows},
    )


def test_thirty_tables_are_thirty_rows_with_the_totals_last() -> None:
    names = [f"settlement.table_{i:02d}_with_a_long_name" for i in range(30)]
    lines = rendered([verified(name, 1_000 * (i + 1)) for i, name in enumerate(names)])
    rows = [line for line in lines if "settlement.table_" in line]
    assert len(rows) == 30
    for name, line in zip(names, rows, strict=True):  # whole names, in order, one each
        assert line.split()[0] == name
        assert "…" not in line
    assert lines[-1].split()[:2] == ["total", "(30)"]
    total_rows = sum(1_000 * (i + 1) for i in range(30))
    assert f"{total_rows:,}" in lines[-1] and "30 of 30" in lines[-1]
    header = next(line for line in lines if "extracted" in line)
    assert lines.index(header) < lines.index(rows[0])


def test_a_mismatch_and_a_failure_say_what_is_wrong() -> None:
    wrong = verified("db.wrong", 10)
    wrong.verification = {
        "status": "mismatch",
        "missing_rows": 2,
        "differing_rows": 1,
        "newer_rows": 4,
        "deleted_in_source": 3,
    }
    failed = TableSummary(table="db.failed", status="failed")
    lines = rendered([verified("db.fine", 5), wrong, failed])
    row = {line.split()[0]: line for line in lines}
    assert row["db.fine"].split()[-1] == "yes"
    assert row["db.wrong"].split()[-1] == "no"
    assert row["db.failed"].split()[1] == "failed" and row["db.failed"].split()[-1] == "no"
    assert lines[-2].split()[:2] == ["total", "(3)"]
    assert "1 of 3" in lines[-2] and "2 succeeded" in lines[-2]
    assert lines[-1] == (
        "db.wrong: 2 missing, 1 differing; 4 newer than the watermark; 3 deleted in source"
    )


def test_one_table_has_no_totals_row() -> None:
    lines = rendered([verified("db.only", 7)])
    assert not any("total" in line for line in lines)
    assert sum("db.only" in line for line in lines) == 1


def reconciled(table: str, status: str, **figures: int) -> dict:
    return {"table": table, "status": status, "ranges": 3, "verified_rows": 1_000, **figures}


def test_reconcile_prints_a_row_per_table_with_the_totals_last() -> None:
    from myshift.cli.reconcile import outcome_table

    records = [reconciled(f"settlement.table_{i:02d}", "equal") for i in range(29)]
    records.append(reconciled("settlement.broken", "differs", missing_rows=2, differing_rows=1))
    out = io.StringIO()
    Console(file=out, width=100, color_system=None).print(outcome_table("r", records), crop=False)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    assert len([line for line in lines if "settlement." in line]) == 30
    broken = next(line for line in lines if "settlement.broken" in line).split()
    assert broken[:3] == ["settlement.broken", "differs", "3"] and broken[-1] == "no"
    total = lines[-1].split()
    assert total[:4] == ["total", "(30)", "29", "equal"] and "30,000" in total
    assert total[-3:] == ["29", "of", "30"]
