"""The code asset carries the CA bundles the pipelines name, where the functions look.

In AWS the functions read the pipeline files from `/var/task/pipelines` and resolve
`source.tls.ca_bundle` against it; a bundle the asset lacks would fail every run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from myshift.config import load_pipelines

from infra.packaging import stage_code_asset
from tests.infra.test_stages import PIPELINE  # a remote host, tls: {mode: required}
from tests.support.tls_mariadb import Authority


def pipelines_with(tmp_path: Path, bundles: dict[str, str]) -> Path:
    """A pipelines directory: one pipeline per (name, ca_bundle as written)."""
    directory = tmp_path / "pipelines"
    directory.mkdir(exist_ok=True)
    for name, bundle in bundles.items():
        text = PIPELINE.format(name=name).replace("{mode: required}", f"{{ca_bundle: '{bundle}'}}")
        (directory / f"{name}.yml").write_text(text)
    return directory


def test_bundles_next_to_and_below_the_pipeline_files_are_copied(tmp_path: Path) -> None:
    directory = tmp_path / "pipelines"
    (directory / "certs").mkdir(parents=True)
    Authority.create(directory / "global-bundle.pem", "next to")
    Authority.create(directory / "certs" / "other.pem", "below")
    pipelines_with(tmp_path, {"orders": "global-bundle.pem", "items": "certs/other.pem"})
    asset = stage_code_asset(tmp_path / "asset", pipelines_dir=directory)
    for relative in ("global-bundle.pem", "certs/other.pem"):
        staged = asset / "pipelines" / relative
        assert staged.read_bytes() == (directory / relative).read_bytes()
    deployed = load_pipelines(asset / "pipelines")
    assert deployed["items"].source.tls.ca_path == asset / "pipelines" / "certs" / "other.pem"


@pytest.mark.parametrize("where", ["absolute", "outside"])
def test_a_bundle_the_functions_could_not_find_is_refused(tmp_path: Path, where: str) -> None:
    Authority.create(tmp_path / "outside.pem", "outside")
    directory = tmp_path / "pipelines"
    directory.mkdir()
    Authority.create(directory / "inside.pem", "inside")
    bundle = str(directory / "inside.pem") if where == "absolute" else "../outside.pem"
    pipelines_with(tmp_path, {"orders": bundle})
    assert load_pipelines(directory)["orders"].source.tls.ca_path is not None  # the CLI's view
    with pytest.raises(ValueError) as error:
        stage_code_asset(tmp_path / "asset", pipelines_dir=directory)
    message = str(error.value)
    assert message.startswith(f"pipeline 'orders': source.tls.ca_bundle {bundle} is not inside")
    assert "copy the file there" in message
    assert not list(tmp_path.glob("asset*"))
