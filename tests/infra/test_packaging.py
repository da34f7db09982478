"""The code asset carries the CA bundles the pipelines name, where the functions look.

In AWS the functions read the pipeline files from `/var/task/pipelines` and resolve
`source.tls.ca_bundle` against it; a bundle the asset lacks would fail every run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from myshift.config import load_pipelines

from infra.functions import FUNCTIONS
from infra.packaging import handler_module_files, handler_modules, stage_code_asset
from tests.support.pipelines import PIPELINE  # a remote host, tls: {mode: required}
from tests.support.synth import REPO_ROOT
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


# --- what the asset holds ------------------------------------------------------------

# Imports every handler module from the asset alone and prints the package's modules
# that were loaded, as files relative to the asset's package.
_IMPORT_HANDLERS = """
import importlib, json, pathlib, sys
asset = pathlib.Path(sys.argv[1]).resolve()
sys.path.insert(0, str(asset))
for name in json.loads(sys.argv[2]):
    importlib.import_module(name)
loaded = sorted(
    str(pathlib.Path(m.__file__).resolve().relative_to(asset / "myshift"))
    for name, m in list(sys.modules.items())
    if (name == "myshift" or name.startswith("myshift.")) and getattr(m, "__file__", None)
)
print(json.dumps(loaded))
"""


def _staged_modules(asset: Path) -> list[str]:
    package = asset / "myshift"
    return sorted(str(p.relative_to(package)) for p in package.rglob("*") if p.is_file())


def test_the_asset_holds_only_what_the_handlers_import(tmp_path: Path) -> None:
    """Every module in the asset is imported by a handler (transitively), and every
    handler imports from the asset alone: nothing missing, nothing extra."""
    directory = pipelines_with(tmp_path, {})
    asset = stage_code_asset(tmp_path / "asset", pipelines_dir=directory)
    staged = _staged_modules(asset)
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_HANDLERS, str(asset), json.dumps(handler_modules())],
        cwd=tmp_path,  # not the repository: its functions/ must not stand in for the asset
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == staged
    assert {f"handlers/{spec.name}.py" for spec in FUNCTIONS} <= set(staged)


def test_nothing_local_only_is_in_the_asset(tmp_path: Path) -> None:
    asset = stage_code_asset(tmp_path / "asset", pipelines_dir=pipelines_with(tmp_path, {}))
    staged = _staged_modules(asset)
    for local_only in ("local/", "cli/", "__main__.py", "tunnel.py"):
        assert not [p for p in staged if p.startswith(local_only)], local_only
    # The repository's package does hold them: the asset left them out.
    package = REPO_ROOT / "functions" / "myshift"
    for present in ("local/redshift_standin.py", "cli/main.py", "__main__.py", "tunnel.py"):
        assert (package / present).is_file()


def test_a_module_a_handler_imports_inside_a_function_is_kept(tmp_path: Path) -> None:
    package = tmp_path / "myshift"
    (package / "handlers").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "handlers" / "__init__.py").write_text("")
    (package / "handlers" / "job.py").write_text(
        "from myshift import used\n\ndef handler(e, c):\n    from .. import lazy\n"
    )
    for name in ("used", "lazy", "unused"):
        (package / f"{name}.py").write_text("from myshift.errors import X\n" * (name == "used"))
    (package / "errors.py").write_text("X = 1\n")
    files = handler_module_files(package, ["myshift.handlers.job"])
    assert sorted(map(str, files)) == [
        "__init__.py",
        "errors.py",
        "handlers/__init__.py",
        "handlers/job.py",
        "lazy.py",
        "used.py",
    ]
