"""Pipeline files: valid ones load, bad ones fail with the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from myshift.config import RDS_CA_BUNDLE_URL, load_pipeline, load_pipeline_file, load_pipelines
from myshift.errors import ConfigError

from tests.support.pipelines import GOOD
from tests.support.tls_mariadb import Authority


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
    # No chunk_rows: each run sizes its chunks from the table (plan.choose_chunk_rows).
    assert pipeline.chunk_rows is None and pipeline.max_concurrent_chunks == 2
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


# --- source.tls ----------------------------------------------------------------------

REMOTE = GOOD.replace("host: db, user: app, password_env: PW, tls: {mode: required}", "{source}")
OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
DB = "host: db.example.com, user: app, password_env: PW"


def remote(source: str) -> str:
    """GOOD with another `source` mapping (flow style, without braces)."""
    return REMOTE.replace("{source}", source)


def test_a_remote_host_without_a_ca_bundle_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = write(tmp_path, "good", remote(DB))
    with pytest.raises(ConfigError) as error:
        load_pipeline_file(path)
    message = str(error.value)
    assert message.startswith(f"{path}: source.tls: MySQL host db.example.com is not loopback")
    assert "tls.ca_bundle" in message and "mode: required" in message
    assert RDS_CA_BUNDLE_URL in message and "\n" not in message


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_a_loopback_host_defaults_to_no_tls(tmp_path: Path, host: str) -> None:
    text = remote(f"host: '{host}', user: app, password_env: PW")
    assert load_pipeline_file(write(tmp_path, "good", text)).source.tls.mode == "disabled"


def test_a_ca_bundle_is_read_relative_to_the_pipeline_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "certs").mkdir()
    Authority.create(tmp_path / "certs" / "ca.pem", "test CA")
    text = remote(f"{DB}, tls: {{ca_bundle: certs/ca.pem}}")
    path = write(tmp_path, "good", text)
    monkeypatch.chdir(tmp_path / "certs")  # not where the bundle is relative to
    tls = load_pipeline_file(path).source.tls
    assert tls.mode == "verify_identity"  # a bundle given: checked, names too
    assert tls.ca_bundle == Path("certs/ca.pem") and tls.ca_path == tmp_path / "certs" / "ca.pem"
    explicit = text.replace("{ca_bundle:", "{mode: verify_ca, ca_bundle:")
    assert load_pipeline_file(write(tmp_path, "good", explicit)).source.tls.mode == "verify_ca"


@pytest.mark.parametrize(
    ("tls", "content", "message"),
    [
        ("{ca_bundle: missing.pem}", None, "missing.pem does not exist"),
        ("{ca_bundle: ca.pem}", b"not a certificate\n", "holds no PEM certificate"),
        (
            "{ca_bundle: ca.pem}",
            b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
            "is not a PEM CA bundle OpenSSL can read",
        ),
        ("{mode: verify_identity}", None, "mode verify_identity checks the server's certificate"),
        ("{mode: required, ca_bundle: ca.pem}", b"", "mode required does not check"),
        ("{mode: sometimes}", None, "source.tls.mode"),
    ],
)
def test_bad_tls_settings_name_the_field(
    tmp_path: Path, tls: str, content: bytes | None, message: str
) -> None:
    if content is not None:
        if content:
            (tmp_path / "ca.pem").write_bytes(content)
        else:
            Authority.create(tmp_path / "ca.pem", "test CA")
    text = remote(f"{DB}, tls: {tls}")
    with pytest.raises(ConfigError) as error:
        load_pipeline_file(write(tmp_path, "good", text))
    assert str(error.value).startswith(f"{tmp_path / 'good.yml'}: source.tls")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_operations_guide_production_example_loads_with_its_ca_bundle(tmp_path: Path) -> None:
    text = OPERATIONS.read_text(encoding="utf-8").split("**2. A pipeline file**", 1)[1]
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    tls = yaml.safe_load(example)["source"]["tls"]
    path = tmp_path / "settlement.yml"
    path.write_text(example)
    with pytest.raises(ConfigError, match=f"{tls['ca_bundle']} does not exist"):
        load_pipeline_file(path)
    Authority.create(tmp_path / tls["ca_bundle"], "test CA")
    source = load_pipeline_file(path).source
    assert source.tls.mode == "verify_identity"
    assert source.tls.ca_path == tmp_path / tls["ca_bundle"]
