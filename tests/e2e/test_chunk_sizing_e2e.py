"""A pipeline file without chunk_rows: the run's chunks are sized from the table
(`plan.choose_chunk_rows` on information_schema's estimate), the CLI's summary says so;
an explicit chunk_rows and a run's --limit stay authoritative."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from myshift import plan
from myshift.cli.main import cli
from myshift.local import sample
from myshift.local.engine import LocalEngine

from tests.e2e.conftest import DATABASE, local_cli_env, pipeline_yaml
from tests.support.mariadb import connect

DEFAULTS = "e2e_sizing"
EXPLICIT = "e2e_sizing_set"
NAME = "sizing_orders"
TABLE = f"{DATABASE}.{NAME}"
# Enough rows that the size from the table (2 chunks, one per concurrent extraction)
# differs from the former fixed default (250,000 rows: 1 chunk).
ROWS = 2 * plan.CHUNK_MIN_ROWS + 20_000


@pytest.fixture(scope="module")
def cli_env(
    engine: LocalEngine, pipelines_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    (pipelines_dir / f"{DEFAULTS}.yml").write_text(
        pipeline_yaml(DEFAULTS, [TABLE], schema="sizing_dw", chunk_rows=None)
    )
    (pipelines_dir / f"{EXPLICIT}.yml").write_text(
        pipeline_yaml(EXPLICIT, [TABLE], schema="sizing_set_dw", chunk_rows=45_000)
    )
    conn = connect()
    sample.seed(conn, DATABASE, NAME, ROWS)
    with conn.cursor() as cursor:  # fresh statistics: the estimate the plan reads
        cursor.execute(f"ANALYZE TABLE `{DATABASE}`.`{NAME}`")
        cursor.fetchall()
    conn.close()
    yield local_cli_env(engine, pipelines_dir, tmp_path_factory.mktemp("state"))


def backup(env: dict[str, str], pipeline: str, *options: str) -> dict:
    result = CliRunner().invoke(
        cli,
        ["--local", "--json", "sync", "pipeline", "-p", pipeline, "--backup-only", *options],
        env=env,
        catch_exceptions=False,
    )
    out = [
        line for line in result.stdout.splitlines() if not line.startswith(('{"level"', '{"_aws"'))
    ]
    assert result.exit_code == 0, result.stdout
    return dict(json.loads("\n".join(out))["tables"][0])


def test_without_chunk_rows_the_run_sizes_its_chunks_from_the_table(
    cli_env: dict[str, str],
) -> None:
    conn = connect()
    size = plan.table_size(conn, DATABASE, NAME)
    conn.close()
    expected = plan.choose_chunk_rows(size, 2)  # the file's max_concurrent_chunks
    assert size.rows > 0 and size.avg_row_bytes > 0
    assert plan.CHUNK_MIN_ROWS <= expected < ROWS

    table = backup(cli_env, DEFAULTS)
    assert table["chunk_rows"] == expected and table["chunk_rows_from"] == "table"
    assert table["rows_extracted"] == ROWS
    assert table["files"] == -(-ROWS // expected) == 2


def test_an_explicit_chunk_rows_and_a_runs_limit_stay_authoritative(
    cli_env: dict[str, str],
) -> None:
    table = backup(cli_env, EXPLICIT, "--max-chunks", "2")
    assert table["chunk_rows"] == 45_000 and table["chunk_rows_from"] == "setting"
    assert table["files"] == 2 and table["rows_extracted"] == 90_000

    table = backup(cli_env, EXPLICIT, "--limit", "10000", "--max-chunks", "1")
    assert table["chunk_rows"] == 10_000 and table["chunk_rows_from"] == "setting"
    assert table["files"] == 1 and table["rows_extracted"] == 10_000
