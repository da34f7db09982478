"""The documentation says what the code does: the grants a DBA runs are the ones the local
engine runs, and the repository stands on its own."""

from __future__ import annotations

from pathlib import Path

from myshift.local.engine import warehouse_grants

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_shows_the_grants_the_local_engine_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    grants = (ROOT / "docs" / "warehouse-grants.sql").read_text(encoding="utf-8")
    assert grants in readme
    assert [s.split()[0] for s in warehouse_grants()] == ["CREATE", "GRANT"]
    assert all("{user}" in s for s in warehouse_grants())


def test_the_docs_link_nothing_outside_the_repository() -> None:
    for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        text = path.read_text(encoding="utf-8")
        assert "../shared" not in text and "DESIGN.md" not in text, path
