"""s3clean on moto S3 + DynamoDB: the domain functions, the CLI group and the Lambda.

Ages: the domain functions take `now`, so most tests look from the future; where one
table needs files of different ages, moto's stored `last_modified` is set back.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
from myshift import clean, state
from myshift.cli import s3clean as s3clean_cli
from myshift.cli.resources import Resources
from myshift.config import PipelineConfig, load_pipeline
from myshift.errors import ConfigError, MyshiftError
from myshift.extract import chunk_object_key
from myshift.steps import manifest_key

from tests.support.aws import create_state_table, stand_in_cli

REGION = "us-east-1"
BUCKET = "s3clean-test"
TABLE_NAME = "s3clean-state"
DATA = "data"
SIZE = 1000

PIPELINE_YAML = """
name: {name}
source: {{host: db, user: app, password_env: PW, tls: {{mode: required}}}}
target: {{database: dev, schema: dw, workgroup: wg}}
tables:
{tables}
"""


def _write_pipeline(directory: Path, name: str, tables: list[str]) -> None:
    lines = "\n".join(f"  - {{name: {t}, cursor: updated_at, primary_key: [id]}}" for t in tables)
    (directory / f"{name}.yml").write_text(PIPELINE_YAML.format(name=name, tables=lines))


@pytest.fixture()
def pipelines_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "pipelines"
    directory.mkdir()
    _write_pipeline(directory, "shop", ["db.t", "db.t2"])
    _write_pipeline(directory, "crm", ["crm.accounts"])
    monkeypatch.setenv("MYSHIFT_PIPELINES_DIR", str(directory))
    monkeypatch.delenv("MYSHIFT_DATA_PREFIX", raising=False)
    return directory


@pytest.fixture()
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        dynamodb = boto3.resource("dynamodb", region_name=REGION)
        create_state_table(dynamodb, TABLE_NAME)
        yield {"s3": s3, "table": dynamodb.Table(TABLE_NAME)}


@pytest.fixture()
def shop(pipelines_dir: Path) -> PipelineConfig:
    return load_pipeline(pipelines_dir, "shop")


def put_files(
    aws: dict[str, Any],
    pipeline: str,
    table: str,
    run_id: str,
    count: int,
    status: str | None,
    size: int = SIZE,
) -> list[str]:
    """Upload `count` chunk files of one run; record them with `status` (None: no item)."""
    keys = [chunk_object_key(DATA, pipeline, table, run_id, i) for i in range(count)]
    for key in keys:
        aws["s3"].put_object(Bucket=BUCKET, Key=key, Body=b"x" * size)
    if status is not None:
        items = [
            {
                "sk": state.file_sort_key(run_id, i),
                "s3_key": key,
                "rows": 10,
                "bytes": size,
                "run_id": run_id,
                "chunk": i,
                "status": status,
            }
            for i, key in enumerate(keys)
        ]
        state.put_files(aws["table"], pipeline, table, items)
    return keys


def put_manifest(aws: dict[str, Any], pipeline: str, table: str, run_id: str) -> str:
    key = manifest_key(DATA, pipeline, table, run_id)
    aws["s3"].put_object(Bucket=BUCKET, Key=key, Body=b'{"entries": []}')
    return key


def set_age(key: str, age: dt.timedelta) -> None:
    """Pretend an object was written `age` ago (moto keeps a naive UTC time)."""
    fake = s3_backends[DEFAULT_ACCOUNT_ID]["global"].buckets[BUCKET].keys[key]
    fake.last_modified = (dt.datetime.now(dt.UTC) - age).replace(tzinfo=None)


def s3_keys(aws: dict[str, Any]) -> set[str]:
    pages = aws["s3"].get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def items(aws: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(aws["table"].scan(ConsistentRead=True)["Items"], key=lambda i: (i["pk"], i["sk"]))


def later(days: float = 10) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(days=days)


def run_clean(aws: dict[str, Any], pipeline: PipelineConfig, table: str, **kwargs: Any):
    kwargs.setdefault("now", later())
    return clean.clean_table(
        aws["s3"],
        aws["table"],
        bucket=BUCKET,
        data_prefix=DATA,
        pipeline=pipeline,
        table=table,
        **kwargs,
    )


# --- domain: clean_table ---------------------------------------------------------------


def test_loaded_files_go_unloaded_stay(aws, shop) -> None:
    loaded = put_files(aws, "shop", "db.t", "r1", 3, "loaded")
    extracted = put_files(aws, "shop", "db.t", "r2", 2, "extracted")
    untracked = put_files(aws, "shop", "db.t", "r3", 1, None)
    result = run_clean(aws, shop, "db.t", older_than=dt.timedelta(days=7))
    assert result.deleted_files == 3 and result.deleted_bytes == 3 * SIZE
    assert result.deleted_items == 3 and not result.dry_run and not result.errors
    assert {f.status for f in result.kept} == {"extracted", "untracked"}
    assert s3_keys(aws) == set(extracted + untracked)
    left = state.list_files(aws["table"], "shop", "db.t")
    assert {i["s3_key"] for i in left} == set(extracted)
    assert not set(loaded) & s3_keys(aws)


def test_files_of_failed_runs_are_abandoned_and_go(aws, shop) -> None:
    """`written` files of a run recorded as failed never load: they go by default. A
    `written` file of a run not recorded as failed may be an extraction in progress."""
    abandoned = put_files(aws, "shop", "db.t", "r-failed", 2, "written")
    in_progress = put_files(aws, "shop", "db.t", "r-running", 1, "written")
    pending = put_files(aws, "shop", "db.t", "r-load-failed", 1, "extracted")
    state.put_run(aws["table"], "shop", "db.t", "r-failed", {"status": "failed"})
    state.put_run(aws["table"], "shop", "db.t", "r-load-failed", {"status": "failed"})
    listed = clean.inventory(
        aws["s3"], aws["table"], bucket=BUCKET, data_prefix=DATA, pipeline=shop, table="db.t"
    )
    assert {f.key: f.status for f in listed.files} == {
        **dict.fromkeys(abandoned, "abandoned"),
        **dict.fromkeys(in_progress, "extracted"),
        **dict.fromkeys(pending, "extracted"),
    }
    result = run_clean(aws, shop, "db.t", older_than=dt.timedelta(days=7))
    assert result.deleted_files == 2 and result.deleted_items == 2
    assert s3_keys(aws) == set(in_progress + pending)
    left = {i["s3_key"] for i in state.list_files(aws["table"], "shop", "db.t")}
    assert left == set(in_progress + pending)


def test_include_unloaded_deletes_them(aws, shop) -> None:
    put_files(aws, "shop", "db.t", "r1", 2, "loaded")
    put_files(aws, "shop", "db.t", "r2", 2, "extracted")
    put_files(aws, "shop", "db.t", "r3", 1, None)
    result = run_clean(aws, shop, "db.t", include_unloaded=True)
    assert result.deleted_files == 5 and not result.kept
    assert not s3_keys(aws) and not items(aws)


def test_young_files_stay_by_last_modified(aws, shop) -> None:
    old = put_files(aws, "shop", "db.t", "r1", 2, "loaded")
    young = put_files(aws, "shop", "db.t", "r2", 2, "loaded")
    for key in old:
        set_age(key, dt.timedelta(days=8))
    now = dt.datetime.now(dt.UTC)
    result = run_clean(aws, shop, "db.t", now=now, older_than=dt.timedelta(days=7))
    assert result.deleted_files == 2
    assert s3_keys(aws) == set(young)
    assert {i["s3_key"] for i in state.list_files(aws["table"], "shop", "db.t")} == set(young)


def test_another_tables_prefix_is_untouched(aws, shop) -> None:
    """`db.t` must not reach `db.t2` (a prefix without the trailing '/' would)."""
    put_files(aws, "shop", "db.t", "r1", 2, "loaded")
    neighbour = put_files(aws, "shop", "db.t2", "r1", 2, "loaded")
    neighbour_items = state.list_files(aws["table"], "shop", "db.t2")
    result = run_clean(aws, shop, "db.t", include_unloaded=True)
    assert result.deleted_files == 2
    assert s3_keys(aws) == set(neighbour)
    assert state.list_files(aws["table"], "shop", "db.t2") == neighbour_items
    assert all(k.startswith("data/shop/db/t/") for k in result.as_dict()["keys"])


def test_pattern(aws, shop) -> None:
    put_files(aws, "shop", "db.t", "shop-2024a", 2, "loaded")
    keep = put_files(aws, "shop", "db.t", "shop-2025a", 2, "loaded")
    result = run_clean(aws, shop, "db.t", pattern="run=shop-2024*")
    assert result.deleted_files == 2 and s3_keys(aws) == set(keep)


def test_dry_run_changes_nothing(aws, shop) -> None:
    put_files(aws, "shop", "db.t", "r1", 3, "loaded")
    put_files(aws, "shop", "db.t", "r2", 1, "extracted")
    put_manifest(aws, "shop", "db.t", "r1")
    put_manifest(aws, "shop", "db.t", "r2")
    before_keys, before_items = s3_keys(aws), items(aws)
    result = run_clean(aws, shop, "db.t", dry_run=True, include_unloaded=True)
    assert result.dry_run and result.files == 6 and result.deleted_files == 0
    assert s3_keys(aws) == before_keys and items(aws) == before_items


def test_manifests_go_except_the_newest(aws, shop) -> None:
    old = put_manifest(aws, "shop", "db.t", "r1")
    newest = put_manifest(aws, "shop", "db.t", "r2")
    set_age(old, dt.timedelta(days=20))
    set_age(newest, dt.timedelta(days=10))
    result = run_clean(
        aws, shop, "db.t", now=dt.datetime.now(dt.UTC), older_than=dt.timedelta(days=7)
    )
    assert result.deleted_files == 1 and s3_keys(aws) == {newest}


def test_stale_items_of_deleted_files_are_removed(aws, shop) -> None:
    """An item left by an interrupted clean (object gone, item there) is removed next time."""
    loaded = put_files(aws, "shop", "db.t", "r1", 2, "loaded")
    waiting = put_files(aws, "shop", "db.t", "r2", 1, "extracted")
    aws["s3"].delete_objects(
        Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in [*loaded, *waiting]]}
    )
    result = run_clean(aws, shop, "db.t")
    assert result.deleted_files == 0 and result.deleted_items == 2
    assert [i["s3_key"] for i in state.list_files(aws["table"], "shop", "db.t")] == waiting


def test_wrong_data_prefix_changes_nothing(aws, shop) -> None:
    put_files(aws, "shop", "db.t", "r1", 2, "loaded")
    before_keys, before_items = s3_keys(aws), items(aws)
    result = clean.clean_table(
        aws["s3"],
        aws["table"],
        bucket=BUCKET,
        data_prefix="raw",
        pipeline=shop,
        table="db.t",
        now=later(),
        include_unloaded=True,
    )
    assert result.deleted_files == 0 and result.deleted_items == 0
    assert s3_keys(aws) == before_keys and items(aws) == before_items


def test_unknown_table_is_rejected(aws, shop) -> None:
    with pytest.raises(ConfigError, match=r"no table 'db\.nope'"):
        run_clean(aws, shop, "db.nope")


def test_more_than_1000_files_go_in_batches(aws, shop) -> None:
    keys = put_files(aws, "shop", "db.t", "r1", 1005, "loaded", size=1)
    batches: list[int] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        batches.append(len(params["Delete"]["Objects"]))

    aws["s3"].meta.events.register("provide-client-params.s3.DeleteObjects", count)
    result = run_clean(aws, shop, "db.t")
    assert batches == [1000, 5]
    assert result.deleted_files == 1005 and result.deleted_items == 1005
    assert not s3_keys(aws) & set(keys) and not state.list_files(aws["table"], "shop", "db.t")


class _RefusingS3:
    """An S3 client whose DeleteObjects refuses one key (as S3 does per key)."""

    def __init__(self, s3: Any, refused: str) -> None:
        self._s3, self._refused = s3, refused

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)

    def delete_objects(self, Bucket: str, Delete: dict[str, Any]) -> dict[str, Any]:
        objects = [o for o in Delete["Objects"] if o["Key"] != self._refused]
        self._s3.delete_objects(Bucket=Bucket, Delete={**Delete, "Objects": objects})
        return {"Errors": [{"Key": self._refused, "Code": "AccessDenied", "Message": "no"}]}


def test_refused_objects_keep_their_items_and_are_reported(aws, shop) -> None:
    keys = put_files(aws, "shop", "db.t", "r1", 3, "loaded")
    result = clean.clean_table(
        _RefusingS3(aws["s3"], keys[1]),
        aws["table"],
        bucket=BUCKET,
        data_prefix=DATA,
        pipeline=shop,
        table="db.t",
        now=later(),
    )
    assert (
        result.deleted_files == 2 and len(result.errors) == 1 and "AccessDenied" in result.errors[0]
    )
    assert [i["s3_key"] for i in state.list_files(aws["table"], "shop", "db.t")] == [keys[1]]


def test_scheduled_clean_only_loaded_every_table(aws, pipelines_dir) -> None:
    from myshift.config import load_pipelines

    put_files(aws, "shop", "db.t", "r1", 2, "loaded")
    t2_waiting = put_files(aws, "shop", "db.t2", "r1", 2, "extracted")
    put_files(aws, "crm", "crm.accounts", "r1", 3, "loaded")
    result = clean.scheduled_clean(
        aws["s3"],
        aws["table"],
        bucket=BUCKET,
        data_prefix=DATA,
        pipelines=load_pipelines(pipelines_dir).values(),
        now=later(40),
        older_than="30d",
    )
    assert result["tables"] == 3 and result["deleted_files"] == 5 and result["kept_files"] == 2
    assert result["deleted_bytes"] == 5 * SIZE and s3_keys(aws) == set(t2_waiting)
    json.dumps(result)  # a Lambda result must serialize


# --- the Lambda ---------------------------------------------------------------------------


class _Context:
    function_name = "myshift-s3clean"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:myshift-s3clean"
    aws_request_id = "test"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 900_000


def test_handler_cleans_old_loaded_files(aws, pipelines_dir, monkeypatch) -> None:
    from myshift import runtime
    from myshift.handlers import s3clean as handler_module
    from myshift.settings import current_settings

    monkeypatch.setenv("MYSHIFT_BUCKET", BUCKET)
    monkeypatch.setenv("MYSHIFT_STATE_TABLE", TABLE_NAME)
    monkeypatch.setenv("MYSHIFT_PIPELINES_DIR", str(pipelines_dir))
    current_settings.cache_clear()
    runtime.clear_clients()
    try:
        old = put_files(aws, "shop", "db.t", "r1", 2, "loaded")
        young = put_files(aws, "shop", "db.t", "r2", 1, "loaded")
        waiting = put_files(aws, "crm", "crm.accounts", "r1", 1, "extracted")
        for key in [*old, *waiting]:
            set_age(key, dt.timedelta(days=40))
        result = handler_module.handler({"older_than": "30d"}, _Context())
        assert result["deleted_files"] == 2 and result["kept_files"] == 1
        assert s3_keys(aws) == set(young + waiting)
        # EventBridge's own scheduled event (no input): the 30-day default.
        assert handler_module.handler({"detail-type": "Scheduled Event"}, _Context())["files"] == 0
        with pytest.raises(MyshiftError, match="older-than"):
            handler_module.handler({"older_than": "7x"}, _Context())
    finally:
        current_settings.cache_clear()
        runtime.clear_clients()


# --- the CLI group ----------------------------------------------------------------------


@pytest.fixture()
def cli(pipelines_dir: Path, monkeypatch: pytest.MonkeyPatch):
    group = stand_in_cli(
        pipelines_dir,
        Resources(BUCKET, TABLE_NAME, "arn:aws:states:::none", REGION),
        s3clean_cli.s3clean,
    )
    # Look from ten days ahead, so the files written now are old enough.
    monkeypatch.setattr(s3clean_cli, "_now", lambda: later(10))

    def invoke(*args: str, terminal: bool = False, answer: str | None = None):
        monkeypatch.setattr(s3clean_cli, "_stdin_is_terminal", lambda: terminal)
        return CliRunner().invoke(group, list(args), input=answer)

    return invoke


def test_cli_list(aws, cli) -> None:
    put_files(aws, "shop", "db.t", "r1", 2, "loaded")
    put_files(aws, "shop", "db.t", "r2", 1, "extracted")
    put_manifest(aws, "shop", "db.t", "r1")
    result = cli("s3clean", "list", "-p", "shop", "-t", "db.t")
    assert result.exit_code == 0, result.output
    assert "loaded: 2 files, 2.0 KiB (2,000 bytes)" in result.output
    assert "extracted: 1 files" in result.output and "manifest: 1 files" in result.output
    result = cli("--json", "s3clean", "list", "-p", "shop", "-t", "db.t")
    record = json.loads(result.stdout)
    assert record["total"]["files"] == 4 and record["by_status"]["loaded"]["bytes"] == 2 * SIZE
    assert all(f["key"].startswith("data/shop/db/t/") for f in record["files"])


def test_cli_clean_prints_and_deletes(aws, cli) -> None:
    put_files(aws, "shop", "db.t", "r1", 3, "loaded")
    waiting = put_files(aws, "shop", "db.t", "r2", 1, "extracted")
    result = cli("s3clean", "clean", "-p", "shop", "-t", "db.t", "--older-than", "7d")
    assert result.exit_code == 0, result.output
    assert "deleted" in result.output and "db.t" in result.output
    assert "2.9 KiB" in result.output and "3,000" in result.output
    assert s3_keys(aws) == set(waiting)


def test_cli_clean_dry_run_and_json(aws, cli) -> None:
    put_files(aws, "shop", "db.t", "r1", 3, "loaded")
    before_keys, before_items = s3_keys(aws), items(aws)
    result = cli("--json", "s3clean", "clean", "-p", "shop", "-t", "db.t", "--dry-run")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["dry_run"] and record["total"]["files"] == 3 and record["total"]["bytes"] == 3000
    assert record["tables"][0]["deleted_files"] == 0 and len(record["tables"][0]["keys"]) == 3
    assert s3_keys(aws) == before_keys and items(aws) == before_items
    result = cli("s3clean", "clean", "-p", "shop", "-t", "db.t", "--dry-run")
    assert "would delete (dry run)" in result.output and "3,000" in result.output
    assert s3_keys(aws) == before_keys and items(aws) == before_items


def test_cli_clean_include_unloaded_and_pattern(aws, cli) -> None:
    put_files(aws, "shop", "db.t", "a1", 1, "extracted")
    keep = put_files(aws, "shop", "db.t", "b1", 1, "extracted")
    result = cli(
        "s3clean", "clean", "-p", "shop", "-t", "db.t", "--pattern", "run=a*", "--include-unloaded"
    )
    assert result.exit_code == 0, result.output
    assert s3_keys(aws) == set(keep)


@pytest.mark.parametrize("age", ["7x", "7", "d7", "1w", "0m"])
def test_cli_bad_older_than(aws, cli, age) -> None:
    put_files(aws, "shop", "db.t", "r1", 1, "loaded")
    result = cli("s3clean", "clean", "-p", "shop", "-t", "db.t", "--older-than", age)
    assert result.exit_code == 2
    assert "older-than" in result.stderr and "error:" in result.stderr
    assert len(s3_keys(aws)) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "shop", "-t", "db.nope"], "has no table 'db.nope'"),
        (["-p", "nope", "-t", "db.t"], "unknown pipeline 'nope'"),
    ],
)
def test_cli_unknown_table_or_pipeline(aws, cli, args, message) -> None:
    for command in ("list", "clean"):
        result = cli("s3clean", command, *args)
        assert result.exit_code == 2 and message in result.stderr


def test_cli_clean_all_refuses_without_a_terminal(aws, cli) -> None:
    put_files(aws, "shop", "db.t", "r1", 2, "loaded")
    before_keys, before_items = s3_keys(aws), items(aws)
    result = cli("s3clean", "clean-all", "--older-than", "1d")
    assert result.exit_code == 2 and "no terminal" in result.stderr and "--force" in result.stderr
    assert s3_keys(aws) == before_keys and items(aws) == before_items


def test_cli_clean_all_asks_in_a_terminal(aws, cli) -> None:
    put_files(aws, "shop", "db.t", "r1", 2, "loaded")
    before_keys = s3_keys(aws)
    result = cli("s3clean", "clean-all", "--older-than", "1d", terminal=True, answer="n\n")
    assert result.exit_code == 1 and "Delete 2 files" in result.output
    assert s3_keys(aws) == before_keys
    result = cli("s3clean", "clean-all", "--older-than", "1d", terminal=True, answer="y\n")
    assert result.exit_code == 0, result.output
    assert not s3_keys(aws)


def test_cli_clean_all_force_every_pipeline(aws, cli) -> None:
    put_files(aws, "shop", "db.t", "r1", 2, "loaded")
    waiting = put_files(aws, "shop", "db.t2", "r1", 1, "extracted")
    put_files(aws, "crm", "crm.accounts", "r1", 3, "loaded")
    result = cli("--json", "s3clean", "clean-all", "--older-than", "1d", "--force")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["total"]["deleted_files"] == 5 and record["total"]["kept_files"] == 1
    assert {(t["pipeline"], t["table"]) for t in record["tables"]} == {
        ("crm", "crm.accounts"),
        ("shop", "db.t"),
        ("shop", "db.t2"),
    }
    assert s3_keys(aws) == set(waiting)


def test_cli_clean_all_dry_run_needs_no_terminal(aws, cli) -> None:
    put_files(aws, "shop", "db.t", "r1", 2, "loaded")
    before_keys, before_items = s3_keys(aws), items(aws)
    result = cli("s3clean", "clean-all", "--older-than", "1d", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would delete (dry run)" in result.output and "total" in result.output
    assert s3_keys(aws) == before_keys and items(aws) == before_items


def test_cli_clean_all_young_files_stay(aws, cli) -> None:
    put_files(aws, "shop", "db.t", "r1", 2, "loaded")
    result = cli("s3clean", "clean-all", "--older-than", "30d", "--force")
    assert result.exit_code == 0, result.output
    assert len(s3_keys(aws)) == 2
