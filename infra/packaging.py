"""The Lambda code asset: plain file copies, no Docker and no bundling image.

Every function ships the same directory: the modules of the `myshift` package that the
handlers import (not the CLI, the local engine or the Redshift stand-in) and the
pipeline files of the stage (read at run time from `/var/task/pipelines`) with the CA
bundles they name (`source.tls.ca_bundle`). Third-party packages live in the layer
(`scripts/build_layer.py`), so this asset stays small and synth stays fast.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from myshift.config import PipelineConfig, load_pipelines, pipeline_files

from infra.functions import FUNCTIONS

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = REPO_ROOT / "functions" / "myshift"
PIPELINES_DIR = REPO_ROOT / "pipelines"
DEFAULT_ASSET_DIR = REPO_ROOT / "build" / "asset"
DEFAULT_LAYER_DIR = REPO_ROOT / "build" / "layer"
LAYER_REQUIREMENTS = REPO_ROOT / "layers" / "requirements.txt"

# Newest glibc of the Lambda OS behind each Python runtime: python3.11 runs on Amazon
# Linux 2 (glibc 2.26), python3.12+ on Amazon Linux 2023 (glibc 2.34). A wheel built
# for a newer glibc installs fine with pip but fails to import on Lambda.
RUNTIME_GLIBC: dict[str, tuple[int, int]] = {
    "3.11": (2, 26),
    "3.12": (2, 34),
    "3.13": (2, 34),
}

# Lambda's limit for a function plus all of its layers, unzipped: 262,144,000 bytes,
# i.e. 250 MB counted in MiB, the unit used by every size printed here.
LAMBDA_UNZIPPED_LIMIT_MB = 250.0
_MB = 1024 * 1024

# Byte-code and editor droppings would only change the asset hash (a needless
# redeploy); Lambda compiles what it imports.
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".*")


def stage_code_asset(
    out_dir: Path = DEFAULT_ASSET_DIR,
    *,
    package_dir: Path = PACKAGE_DIR,
    pipelines_dir: Path = PIPELINES_DIR,
    pipelines: Mapping[str, PipelineConfig] | None = None,
) -> Path:
    """Copy the handlers' modules of `myshift/`, the pipeline files (`pipelines`, by
    default every file in `pipelines_dir`) and their CA bundles into `out_dir`.

    The directory is rebuilt from scratch each time so a deleted module or pipeline
    never lingers in the deployed code. Returns `out_dir`.
    """
    if not (package_dir / "__init__.py").is_file():
        raise FileNotFoundError(f"{package_dir} is not the myshift package")
    if not pipelines_dir.is_dir():
        raise FileNotFoundError(f"pipelines directory {pipelines_dir} does not exist")
    if pipelines is None:
        pipelines = load_pipelines(pipelines_dir)
    bundles = ca_bundles(pipelines_dir, pipelines)  # refused before anything is written
    files = pipeline_files(pipelines_dir)
    modules = handler_module_files(package_dir)
    out_dir = out_dir.resolve()
    # Build next to the target, then swap: a failed copy never leaves half an asset.
    staging = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for relative in sorted(modules):
        target = staging / package_dir.name / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(package_dir / relative, target)
    (staging / "pipelines").mkdir()
    for name in sorted(pipelines):
        shutil.copy2(files[name], staging / "pipelines" / files[name].name)
    for source, relative in bundles.items():
        target = staging / "pipelines" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    return out_dir


def handler_modules() -> list[str]:
    """The modules of the functions' handlers (`myshift.handlers.<name>`)."""
    return sorted({spec.handler.rsplit(".", 1)[0] for spec in FUNCTIONS})


def handler_module_files(
    package_dir: Path = PACKAGE_DIR, roots: Iterable[str] | None = None
) -> set[Path]:
    """The package's files (relative to it) that the handlers import, transitively.

    Read from the source (every `import` / `from ... import` anywhere in a module,
    those inside functions too), so a module imported only on some path is still in.
    A package's `__init__.py` comes with each of its modules.
    """
    package = package_dir.name
    found: dict[str, Path] = {}
    todo = list(roots if roots is not None else handler_modules())
    while todo:
        name = todo.pop()
        if name in found or not (name == package or name.startswith(package + ".")):
            continue
        path = _module_file(package_dir, name)
        if path is None:  # a name imported from a module, not a module
            continue
        found[name] = path
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += _imports(path, name, is_package=path.name == "__init__.py")
    return {path.relative_to(package_dir) for path in found.values()}


def _module_file(package_dir: Path, name: str) -> Path | None:
    relative = Path(*name.split(".")[1:])
    for candidate in (package_dir / relative / "__init__.py", package_dir / f"{relative}.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, name: str, *, is_package: bool) -> list[str]:
    """Every module name `path` imports (and each `from X import y` as X and X.y)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            names.append(base)
            names += [f"{base}.{alias.name}" for alias in node.names]
    return names


def ca_bundles(
    pipelines_dir: Path, pipelines: Mapping[str, PipelineConfig] | None = None
) -> dict[Path, Path]:
    """The CA bundle files the pipelines name: each one's path relative to `pipelines_dir`.

    The functions resolve `ca_bundle` against `/var/task/pipelines`, so it must be written
    relative to the pipeline file and lie inside the directory; an absolute path, or one
    outside it, names a file that is not there in AWS and is refused (ValueError).
    """
    found: dict[Path, Path] = {}
    # Paths as written, `..` folded: a bundle that is a link to a file elsewhere is
    # copied (its content) to where the link is.
    root = Path(os.path.abspath(pipelines_dir))
    if pipelines is None:
        pipelines = load_pipelines(pipelines_dir)
    for name, pipeline in pipelines.items():
        tls = pipeline.source.tls
        if tls.ca_bundle is None or tls.ca_path is None:
            continue
        location = Path(os.path.abspath(tls.ca_path))
        if tls.ca_bundle.is_absolute() or not location.is_relative_to(root):
            raise ValueError(
                f"pipeline {name!r}: source.tls.ca_bundle {tls.ca_bundle} is not inside "
                f"{pipelines_dir}: the deployed functions only have that directory; copy "
                "the file there and name it relative to the pipeline file"
            )
        found[location] = location.relative_to(root)
    return found


def directory_size_mb(path: Path) -> float:
    """Unzipped size of a directory tree in MB (MiB; symlinks not counted)."""
    total = 0
    for item in path.rglob("*"):
        if item.is_file() and not item.is_symlink():
            total += item.stat().st_size
    return total / _MB


def layer_build_file(layer_dir: Path) -> Path:
    """Where scripts/build_layer.py records what a layer directory was built for."""
    return layer_dir.with_name(layer_dir.name + ".build.json")


def layer_build_info(
    requirements: Path, arch: str, python_version: str, glibc: tuple[int, int], prune: int
) -> dict[str, Any]:
    """What decides a layer's content: requirements, target, pruning rules."""
    return {
        "requirements_sha256": hashlib.sha256(requirements.read_bytes()).hexdigest(),
        "arch": arch,
        "python_version": python_version,
        "max_glibc": ".".join(map(str, glibc)),
        "prune_version": prune,
    }


def check_layer(
    layer_dir: Path, *, arch: str, python_version: str, requirements: Path = LAYER_REQUIREMENTS
) -> None:
    """Refuse a layer that scripts/build_layer.py built for another target.

    A directory without a build record (a hand-made or test layer) is accepted as is.
    """
    record = layer_build_file(layer_dir)
    if not record.is_file():
        return
    info = json.loads(record.read_text(encoding="utf-8"))
    problems = []
    if info.get("arch") != arch:
        problems.append(f"built for {info.get('arch')}, the stack wants {arch}")
    if info.get("python_version") != python_version:
        problems.append(
            f"built for python{info.get('python_version')}, the stack wants python{python_version}"
        )
    elif python_version in RUNTIME_GLIBC:
        built = tuple(int(part) for part in str(info.get("max_glibc", "0.0")).split("."))
        if built > RUNTIME_GLIBC[python_version]:
            problems.append(
                f"holds wheels for glibc {info.get('max_glibc')}, which python{python_version} "
                "on Lambda cannot load (a --max-glibc measuring build)"
            )
    if requirements.is_file():
        current = hashlib.sha256(requirements.read_bytes()).hexdigest()
        if info.get("requirements_sha256") != current:
            problems.append(f"{requirements.name} changed since the build")
    if problems:
        raise ValueError(
            f"layer {layer_dir}: {'; '.join(problems)}. Rebuild it: "
            f".venv/bin/python scripts/build_layer.py --arch {arch} "
            f"--python-version {python_version}"
        )
