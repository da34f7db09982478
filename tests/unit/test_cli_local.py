"""The CLI and the local engine agree on the pipelines: the CLI validates the files the
engine runs, or refuses before starting anything, saying how to restart the engine."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from myshift.cli.main import cli

PIPELINE = """name: {name}
source: {{host: 127.0.0.1, port: 1, user: nobody, password_env: MYSQL_PASSWORD}}
target: {{database: dev, schema: dw, workgroup: local}}
tables:
  - {{name: db.t, cursor: updated_at, primary_key: [id]}}
"""


@pytest.fixture()
def engine_dir(tmp_path: Path) -> Path:
    """A local.json as `myshift local up` leaves it, for an engine on `engine_dir`
    (its endpoint unreachable: nothing here may get as far as calling it)."""
    directory = tmp_path / "engine-pipelines"
    directory.mkdir()
    (directory / "demo.yml").write_text(PIPELINE.format(name="demo"))
    record = {
        "endpoint_url": "http://127.0.0.1:9",
        "bucket": "b",
        "state_table": "t",
        "state_machine_arn": "arn:aws:states:us-east-1:123456789012:stateMachine:s",
        "region": "us-east-1",
        "pipelines_dir": str(directory),
        "pid": os.getpid(),  # alive
    }
    (tmp_path / "local.json").write_text(json.dumps(record))
    return directory


def invoke(tmp_path: Path, pipelines: Path | None, *args: str) -> tuple[int, str]:
    env = {"MYSHIFT_STATE_DIR": str(tmp_path), "MYSHIFT_PIPELINES_DIR": None}
    if pipelines is not None:
        env["MYSHIFT_PIPELINES_DIR"] = str(pipelines)
    result = CliRunner().invoke(cli, ["--local", *args], env=env, catch_exceptions=False)
    return result.exit_code, result.stderr


def test_another_pipelines_dir_is_refused_with_how_to_restart(
    tmp_path: Path, engine_dir: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "elsewhere.yml").write_text(PIPELINE.format(name="elsewhere"))
    for args in (["sync", "pipeline", "-p", "elsewhere"], ["local", "up"]):
        code, err = invoke(tmp_path, other, *args)
        assert code == 2, err
        assert err.count("\n") == 1 and err.startswith("error: "), err
        assert f"runs the pipelines in {engine_dir}" in err
        assert f"myshift local down && MYSHIFT_PIPELINES_DIR={other} myshift local up" in err


def test_without_the_variable_the_cli_reads_the_engines_directory(
    tmp_path: Path, engine_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./pipelines
    code, err = invoke(tmp_path, None, "sync", "pipeline", "-p", "nosuch")
    assert code == 2 and f"in {engine_dir}" in err, err  # the engine's files were read
    code, err = invoke(tmp_path, engine_dir, "local", "up")
    assert code == 0, err
