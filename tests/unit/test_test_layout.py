"""Test modules import nothing from other test modules: shared helpers live in
tests/support (or in a conftest.py as fixtures), so a test file can be moved, renamed or
deleted without breaking another one.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
TEST_MODULE = re.compile(r"^tests\.[A-Za-z0-9_]+\.test_[A-Za-z0-9_]*$")


def imported_test_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) for each import of a module `tests.<dir>.test_*`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if TEST_MODULE.match(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if TEST_MODULE.match(node.module):
                found.append((node.lineno, node.module))
            else:  # from tests.unit import test_config
                found += [
                    (node.lineno, f"{node.module}.{a.name}")
                    for a in node.names
                    if TEST_MODULE.match(f"{node.module}.{a.name}")
                ]
    return found


def test_the_check_sees_each_form_of_import() -> None:
    source = (
        "import tests.unit.test_config\n"
        "from tests.unit.test_schema import info\n"
        "from tests.infra import test_stages\n"
        "from tests.support.schema_rows import info\n"
        "from tests.infra.conftest import ALARMS\n"
        "def f():\n    from tests.integration.test_redshift_standin_rules import run\n"
    )
    assert imported_test_modules(ast.parse(source)) == [
        (1, "tests.unit.test_config"),
        (2, "tests.unit.test_schema"),
        (3, "tests.infra.test_stages"),
        (7, "tests.integration.test_redshift_standin_rules"),
    ]


def test_no_test_module_imports_another() -> None:
    paths = sorted(TESTS.rglob("*.py"))
    assert len(paths) > 50, f"found only {len(paths)} files under {TESTS}"
    offenders = [
        f"{path.relative_to(TESTS.parent)}:{line}: imports {module}"
        for path in paths
        for line, module in imported_test_modules(ast.parse(path.read_text(), str(path)))
    ]
    assert not offenders, "move shared helpers into tests/support:\n" + "\n".join(offenders)
