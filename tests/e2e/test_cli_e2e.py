"""The operator CLI against the local engine: every command, and bad flags.

The commands run in-process through click's runner with `--local`, pointed at the
test engine by its state file, as `myshift local up` would leave it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from myshift import state
from myshift.cli.main import cli
from myshift.local import sample
from myshift.local.engine import LocalEngine

from tests.e2e.conftest import DATABASE, local_cli_env, pipeline_yaml
from tests.support.mariadb import connect

PIPELINE = "e2e_cli"
TABLE = f"{DATABASE}.cli_orders"


@pytest.fixture(scope="module")
def cli_env(
    engine: LocalEngine, pipelines_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    (pipelines_dir / f"{PIPELINE}.yml").write_text(
        pipeline_yaml(PIPELINE, [TABLE], schema="cli_dw", chunk_rows=400)
    )
    conn = connect()
    sample.seed(conn, DATABASE, "cli_orders", 1_500)
    conn.close()
    yield local_cli_env(engine, pipelines_dir, tmp_path_factory.mktemp("state"))


def on_table(group: str, command: str, *options: str) -> list[str]:
    """The arguments of `myshift group command` for this module's table, then `options`."""
    return [group, command, "-p", PIPELINE, "-t", TABLE, *options]


def invoke(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--local", *args], env=env, catch_exceptions=False)
    # The engine's handlers run in this process and log JSON lines to the same stdout
    # (log lines, and the verification's EMF metric lines).
    out = "\n".join(
        line for line in result.stdout.splitlines() if not line.startswith(('{"level"', '{"_aws"'))
    )
    return result.exit_code, out, result.stderr


def test_sync_watermark_runs_and_counts(cli_env: dict[str, str]) -> None:
    code, out, _ = invoke(
        cli_env, "--json", "sync", "pipeline", "-p", PIPELINE, "--limit", "500", "--max-chunks", "2"
    )
    assert code == 0, out
    report = json.loads(out)
    assert report["verified"] is True
    assert report["tables"][0]["rows_extracted"] == 1_000
    assert report["tables"][0]["target_rows"] == report["tables"][0]["source_rows"] == 1_000
    execution = report["execution"]

    code, out, _ = invoke(cli_env, "--json", "watermark", "get", "-p", PIPELINE, "-t", TABLE)
    mark = json.loads(out)
    assert (
        code == 0
        and mark["mysql_rows_extracted"] == 1_000
        and mark["redshift_rows_loaded"] == 1_000
    )

    code, out, _ = invoke(
        cli_env, "--json", "watermark", "get", "-p", PIPELINE, "-t", TABLE, "--show-files"
    )
    assert code == 0 and len(json.loads(out)["files"]) == 2

    code, out, _ = invoke(cli_env, "--json", "watermark", "list", "-p", PIPELINE)
    assert code == 0 and TABLE in json.loads(out)

    code, out, _ = invoke(cli_env, "--json", "runs", "list", "-p", PIPELINE)
    assert code == 0 and json.loads(out)[0]["run_id"] == execution

    code, out, _ = invoke(cli_env, "--json", "runs", "show", execution)
    shown = json.loads(out)
    assert code == 0 and shown["status"] == "SUCCEEDED"
    assert shown["tables"][TABLE]["rows_loaded"] == 1_000

    code, out, _ = invoke(
        cli_env, "--json", "watermark-count", "validate-counts", "-p", PIPELINE, "-t", TABLE
    )
    assert code == 0 and json.loads(out)["differ"] == []

    code, out, _ = invoke(
        cli_env,
        "--json",
        *on_table("watermark-count", "set-count", "--count", "7", "--side", "redshift"),
    )
    assert code == 0 and json.loads(out)["redshift_rows_loaded"] == 7
    code, out, _ = invoke(
        cli_env, "--json", "watermark-count", "validate-counts", "-p", PIPELINE, "-t", TABLE
    )
    assert code == 1 and json.loads(out)["differ"] == ["last run: extracted = loaded"]

    # The rest, then a reset: the next run reads everything again, merging by key.
    code, out, _ = invoke(cli_env, "--json", "sync", "pipeline", "-p", PIPELINE)
    assert code == 0 and json.loads(out)["tables"][0]["rows_extracted"] == 500
    code, out, _ = invoke(
        cli_env, "--json", "watermark", "reset", "-p", PIPELINE, "-t", TABLE, "--yes"
    )
    assert code == 0 and json.loads(out)["last_key"] is None
    assert json.loads(out)["mysql_rows_extracted"] == 0
    code, out, _ = invoke(cli_env, "--json", "sync", "pipeline", "-p", PIPELINE)
    tables = json.loads(out)["tables"][0]
    assert code == 0 and tables["rows_extracted"] == 1_500 and tables["target_rows"] == 1_500
    assert tables["duplicate_keys"] == 0


def test_watermark_set_and_backup_then_redshift_only(
    cli_env: dict[str, str], engine: LocalEngine
) -> None:
    conn = connect()
    with conn.cursor() as cursor:
        cursor.execute(f"SELECT updated_at FROM {TABLE} ORDER BY updated_at, id LIMIT 1 OFFSET 999")
        stamp = cursor.fetchone()[0]
        cursor.execute(f"SELECT COUNT(*) FROM {TABLE} WHERE updated_at > %s", (stamp,))
        newer = cursor.fetchone()[0]
    conn.close()
    timestamp = stamp.strftime("%Y-%m-%d %H:%M:%S.%f")
    code, out, _ = invoke(
        cli_env, "--json", *on_table("watermark", "set", "--timestamp", timestamp)
    )
    assert code == 0, out
    code, out, _ = invoke(cli_env, "--json", "sync", "pipeline", "-p", PIPELINE, "--backup-only")
    assert code == 0, out
    assert json.loads(out)["tables"][0]["rows_extracted"] == newer
    pending = state.list_files(engine.client_table(), PIPELINE, TABLE, status="extracted")
    assert sum(f["rows"] for f in pending) == newer
    code, out, _ = invoke(cli_env, "--json", "sync", "pipeline", "-p", PIPELINE, "--redshift-only")
    report = json.loads(out)
    assert code == 0 and report["verified"], out
    assert report["tables"][0]["rows_loaded"] == newer
    assert state.list_files(engine.client_table(), PIPELINE, TABLE, status="extracted") == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sync", "pipeline", "-p", PIPELINE, "--limit", "0"], "limit"),
        (["sync", "pipeline", "-p", PIPELINE, "--limit", "-3"], "limit"),
        (["sync", "pipeline", "-p", PIPELINE, "--max-chunks", "0"], "max_chunks"),
        (["sync", "pipeline", "-p", PIPELINE, "--limit", "ten"], "'ten' is not a valid integer"),
        (["sync", "pipeline", "-p", PIPELINE, "--backup-only", "--redshift-only"], "exclude"),
        (["sync", "pipeline", "-p", "nope"], "unknown pipeline 'nope'"),
        (["sync", "pipeline", "-p", PIPELINE, "-t", "x.y"], "has no table 'x.y'"),
        (["sync", "pipeline", "-p", PIPELINE, "-t", "`; DROP TABLE x; --"], "has no table"),
        (["watermark", "get", "-p", PIPELINE], "Missing option '-t'"),
        (on_table("watermark", "set", "--timestamp", "2025-02-30"), "timestamp"),
        (on_table("watermark", "set", "--timestamp", "2025-08-09T20:00:01+09:00"), "time zone"),
        (on_table("watermark", "reset"), "--yes"),
        (on_table("watermark-count", "set-count", "--count", "-1"), "--count"),
        (
            on_table("watermark-count", "set-count", "--count", "1", "--mode", "incremental"),
            "absolute",
        ),
        (["runs", "show", "no-such-run"], "no run named"),
        (["runs", "show", "../../etc"], "execution name"),
    ],
)
def test_bad_flags_fail_with_one_line_and_change_nothing(
    cli_env: dict[str, str], engine: LocalEngine, args: list[str], message: str
) -> None:
    table = engine.client_table()
    before = sorted((i["pk"], i["sk"], str(i)) for i in table.scan()["Items"])
    executions = engine.client("stepfunctions").list_executions(
        stateMachineArn=engine.resources.state_machine_arn
    )["executions"]
    code, out, err = invoke(cli_env, *args)
    assert code == 2, (out, err)
    assert message in err
    after = sorted((i["pk"], i["sk"], str(i)) for i in table.scan()["Items"])
    assert after == before
    assert len(
        engine.client("stepfunctions").list_executions(
            stateMachineArn=engine.resources.state_machine_arn
        )["executions"]
    ) == len(executions)


def test_the_cli_runs_the_pipelines_the_engine_runs(
    cli_env: dict[str, str], engine: LocalEngine, tmp_path: Path
) -> None:
    """$MYSHIFT_PIPELINES_DIR set to another directory after `myshift local up`: the CLI
    refuses before starting anything, saying how to restart the engine; unset, the CLI
    reads the engine's own directory, wherever it runs."""
    other = tmp_path / "other-pipelines"
    other.mkdir()
    (other / "e2e_elsewhere.yml").write_text(
        pipeline_yaml("e2e_elsewhere", [TABLE], schema="elsewhere_dw")
    )
    sfn = engine.client("stepfunctions")
    arn = engine.resources.state_machine_arn
    before = len(sfn.list_executions(stateMachineArn=arn)["executions"])

    moved = {**cli_env, "MYSHIFT_PIPELINES_DIR": str(other)}
    code, out, err = invoke(moved, "sync", "pipeline", "-p", "e2e_elsewhere")
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1, err
    assert f"runs the pipelines in {engine.pipelines_dir}" in err
    assert f"MYSHIFT_PIPELINES_DIR={other} myshift local up" in err
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == before

    unset = {**cli_env, "MYSHIFT_PIPELINES_DIR": None}
    with CliRunner().isolated_filesystem(temp_dir=tmp_path):  # no ./pipelines here
        code, out, err = invoke(unset, "--json", "watermark", "get", "-p", PIPELINE, "-t", TABLE)
    assert code == 0, err
    assert "mysql_rows_extracted" in json.loads(out)
