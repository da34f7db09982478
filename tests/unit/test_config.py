"""Pipeline files: valid ones load, bad ones fail with the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from myshift.config import load_pipeline, load_pipeline_file, load_pipelines
from myshift.errors import ConfigError

GOOD = """
name: good
source: {host: db, user: app, password_env: PW}
target: {database: dev, schema: dw, workgroup: wg}
tables:
  - {name: shop.orders, cursor: updated_at, primary_key: [id]}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yml"
    path.write_text(text)
    return path


def test_repository_pipelines_load() -> None:
    pipelines = load_pipelines(Path(__file__).resolve().parents[2] / "pipelines")
    assert "demo" in pipelines
    assert pipelines["demo"].table("settlement.settle_orders").primary_key == ["id"]


def test_good_file_defaults(tmp_path: Path) -> None:
    pipeline = load_pipeline_file(write(tmp_path, "good", GOOD))
    assert pipeline.strategy == "sequential"
    assert pipeline.chunk_rows == 75_000
    assert pipeline.safety_lag_for(pipeline.tables[0]) == 5
    assert pipeline.tables[0].database == "shop" and pipeline.tables[0].table == "orders"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("shop.orders", "orders"), "tables.0.name"),
        (("shop.orders", "shop.ord`ers"), "tables.0.name"),
        (("cursor: updated_at", "cursor: 'updated at'"), "tables.0.cursor"),
        (("primary_key: [id]", "primary_key: []"), "tables.0.primary_key"),
        (("password_env: PW", "port: 99999"), "source"),
        (("workgroup: wg", "schema2: x"), "target"),
        (("schema: dw", "schema: 'dw; drop'"), "target.schema"),
        (("name: good", "name: Good!"), "name"),
        (("strategy", "strategy"), None),
    ],
)
def test_bad_files_name_the_field(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    text = GOOD.replace(*change)
    if message is None:
        text += "strategy: sideways\n"
        message = "strategy"
    with pytest.raises(ConfigError) as error:
        load_pipeline_file(write(tmp_path, "good", text))
    assert str(error.value).startswith(str(tmp_path / "good.yml"))
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_name_must_match_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must match the file name"):
        load_pipeline_file(write(tmp_path, "other", GOOD))


def test_not_yaml_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_pipeline_file(write(tmp_path, "good", "- a\n- b\n"))


def test_unknown_pipeline_lists_known(tmp_path: Path) -> None:
    write(tmp_path, "good", GOOD)
    with pytest.raises(ConfigError, match=r"unknown pipeline 'nope' \(known: good\)"):
        load_pipeline(tmp_path, "nope")


def test_unknown_table(tmp_path: Path) -> None:
    pipeline = load_pipeline_file(write(tmp_path, "good", GOOD))
    with pytest.raises(ConfigError, match=r"has no table 'shop\.x'"):
        pipeline.table("shop.x")


def test_password_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    source = load_pipeline_file(write(tmp_path, "good", GOOD)).source
    monkeypatch.delenv("PW", raising=False)
    with pytest.raises(ConfigError, match="PW"):
        source.password()
    monkeypatch.setenv("PW", "")
    assert source.password() == ""
