"""The AWS client types (myshift.clients) come from boto3-stubs, a development
dependency the Lambda layer does not install: the code must import without them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "functions" / "myshift"

# Refuses every import of a stub package, as a Lambda without them would.
PROGRAM = """
import importlib, sys

class NoStubs:
    def find_spec(self, name, path=None, target=None):
        if name.startswith("mypy_boto3") or name.startswith("boto3-stubs"):
            raise ImportError(f"stub package imported at runtime: {name}")
        return None

sys.meta_path.insert(0, NoStubs())
for name in sys.argv[1:]:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m.startswith("mypy_boto3"))
assert not loaded, loaded
"""


def modules() -> list[str]:
    """Every module of myshift but the local twin (it runs on a developer's machine)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if "local" in parts or parts[-1] == "__main__":
            continue
        found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def test_every_module_imports_without_the_stub_packages() -> None:
    names = modules()
    assert {"myshift.clients", "myshift.runtime", "myshift.handlers.load"} <= set(names)
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM, *names], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_aliases_exist_at_runtime() -> None:
    from myshift import clients

    for name in clients.__all__:
        assert getattr(clients, name) is object
