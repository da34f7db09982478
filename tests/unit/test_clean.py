"""s3clean's decisions, without I/O: ages, sizes, what is selected and what is kept."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from myshift import clean
from myshift.clean import StoredFile, TableCleanup, TableInventory
from myshift.errors import InputError

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
PREFIX = "data/shop/db/t/"


def stored(name: str, status: str, days_old: float, size: int = 100) -> StoredFile:
    items = () if status in (clean.UNTRACKED, clean.MANIFEST) else ({"pk": "p", "sk": name},)
    return StoredFile(
        key=PREFIX + name,
        name=name,
        size=size,
        last_modified=NOW - dt.timedelta(days=days_old),
        status=status,
        items=items,
    )


def one_of_each(sizes: tuple[int, int, int] = (100, 100, 100)) -> list[StoredFile]:
    """Three chunk files ten days old: a loaded, an extracted and an untracked one."""
    return [
        stored("run=a/chunk-00000.parquet", clean.LOADED, 10, size=sizes[0]),
        stored("run=a/chunk-00001.parquet", clean.EXTRACTED, 10, size=sizes[1]),
        stored("run=b/chunk-00000.parquet", clean.UNTRACKED, 10, size=sizes[2]),
    ]


def gone(sk: str, name: str, status: str) -> dict[str, str]:
    """A FILE# item of `name` (relative to the prefix) whose object is no longer on S3."""
    return {"pk": "p", "sk": sk, "s3_key": PREFIX + name, "status": status}


def found(*files: StoredFile, missing: list | None = None) -> TableInventory:
    return TableInventory("shop", "db.t", PREFIX, list(files), missing or [])


# --- --older-than ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", dt.timedelta(days=7)),
        ("12h", dt.timedelta(hours=12)),
        ("30m", dt.timedelta(minutes=30)),
        ("365d", dt.timedelta(days=365)),
    ],
)
def test_parse_age(text: str, expected: dt.timedelta) -> None:
    assert clean.parse_age(text) == expected


@pytest.mark.parametrize(
    "text", ["7x", "7", "d", "", "7 d", "-7d", "1.5d", "7D", "7dd", "7s", "1w", "0d", "99999999d"]
)
def test_parse_age_rejects(text: str) -> None:
    with pytest.raises(InputError, match="older-than"):
        clean.parse_age(text)


def test_parse_age_message_names_the_format() -> None:
    with pytest.raises(InputError) as caught:
        clean.parse_age("7x")
    assert "7d, 12h, 30m" in str(caught.value) and "'7x'" in str(caught.value)


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"), (5 * 2**30, "5.0 GiB")],
)
def test_human_bytes(size: int, text: str) -> None:
    assert clean.human_bytes(size) == text


# --- select ------------------------------------------------------------------------


def test_only_old_loaded_files_go_by_default() -> None:
    files = [*one_of_each(), stored("run=c/chunk-00000.parquet", clean.LOADED, 1)]
    plan = clean.select(found(*files), now=NOW, older_than=dt.timedelta(days=7))
    assert [f.name for f in plan.delete] == ["run=a/chunk-00000.parquet"]
    assert {f.status for f in plan.kept} == {clean.EXTRACTED, clean.UNTRACKED}
    assert plan.cutoff == NOW - dt.timedelta(days=7)
    assert plan.dry_run and plan.files == 1 and plan.bytes == 100


def test_include_unloaded_takes_everything_old_enough() -> None:
    files = [*one_of_each(), stored("run=c/chunk-00000.parquet", clean.EXTRACTED, 1)]
    plan = clean.select(
        found(*files), now=NOW, older_than=dt.timedelta(days=7), include_unloaded=True
    )
    assert len(plan.delete) == 3 and not plan.kept


def test_cutoff_is_strict() -> None:
    exact = stored("run=a/chunk-00000.parquet", clean.LOADED, 7)
    assert not clean.select(found(exact), now=NOW, older_than=dt.timedelta(days=7)).delete
    older = stored("run=a/chunk-00000.parquet", clean.LOADED, 7.001)
    assert clean.select(found(older), now=NOW, older_than=dt.timedelta(days=7)).delete


def test_no_cutoff_means_any_age() -> None:
    plan = clean.select(found(stored("run=a/c.parquet", clean.LOADED, 0)), now=NOW)
    assert plan.cutoff is None and len(plan.delete) == 1


def test_pattern_is_a_glob_on_the_relative_name() -> None:
    files = [
        stored("run=shop-2024/chunk-00000.parquet", clean.LOADED, 10),
        stored("run=shop-2025/chunk-00000.parquet", clean.LOADED, 10),
        stored("manifests/run=shop-2023.json", clean.MANIFEST, 30),
        stored("manifests/run=shop-2024.json", clean.MANIFEST, 10),
    ]
    plan = clean.select(found(*files), now=NOW, pattern="run=shop-2024*")
    assert [f.name for f in plan.delete] == ["run=shop-2024/chunk-00000.parquet"]
    plan = clean.select(found(*files), now=NOW, pattern="*.parquet")
    assert len(plan.delete) == 2
    # The full key never matches: the pattern is relative to the table prefix.
    assert not clean.select(found(*files), now=NOW, pattern="data/*").delete


def test_empty_pattern_is_refused() -> None:
    with pytest.raises(InputError, match="pattern"):
        clean.select(found(), now=NOW, pattern=" ")


def test_newest_manifest_is_kept_unless_unloaded_included() -> None:
    files = [
        stored("manifests/run=a.json", clean.MANIFEST, 30),
        stored("manifests/run=b.json", clean.MANIFEST, 20),
    ]
    plan = clean.select(found(*files), now=NOW, older_than=dt.timedelta(days=7))
    assert [f.name for f in plan.delete] == ["manifests/run=a.json"]
    assert [f.name for f in plan.kept] == ["manifests/run=b.json"]
    plan = clean.select(found(*files), now=NOW, include_unloaded=True)
    assert len(plan.delete) == 2


def test_stale_items_of_loaded_files_are_removed_others_kept() -> None:
    missing = [
        gone("FILE#1", "run=a/chunk-00000.parquet", "loaded"),
        gone("FILE#2", "run=a/chunk-00001.parquet", "extracted"),
    ]
    plan = clean.select(found(missing=missing), now=NOW)
    assert [i["sk"] for i in plan.stale_items] == ["FILE#1"]
    plan = clean.select(found(missing=missing), now=NOW, include_unloaded=True)
    assert len(plan.stale_items) == 2
    assert not clean.select(found(missing=missing), now=NOW, pattern="run=b/*").stale_items


def test_stale_items_of_failed_runs_are_removed() -> None:
    missing = [
        {**gone("FILE#1", "run=a/chunk-00000.parquet", "written"), "run_id": "a"},
        {**gone("FILE#2", "run=b/chunk-00000.parquet", "written"), "run_id": "b"},
    ]
    inventory = TableInventory("shop", "db.t", PREFIX, [], missing, failed_runs={"a"})
    plan = clean.select(inventory, now=NOW)
    assert [i["sk"] for i in plan.stale_items] == ["FILE#1"]


def test_execute_refuses_a_key_outside_the_prefix() -> None:
    outsider = StoredFile("data/shop/db/t2/run=a/c.parquet", "c", 1, NOW, clean.LOADED)
    plan = TableCleanup("shop", "db.t", PREFIX, None, [outsider], [], [])
    # No client is touched: the check comes before any request.
    with pytest.raises(InputError, match="not under"):
        clean.execute(None, None, bucket="b", cleanup=plan)


@pytest.mark.parametrize(
    ("count", "sizes"), [(0, []), (1, [1]), (1000, [1000]), (2501, [1000, 1000, 501])]
)
def test_batches_hold_at_most_1000(count: int, sizes: list[int]) -> None:
    assert [len(b) for b in clean._batches(list(range(count)))] == sizes


def test_as_dict_counts_kept_by_status() -> None:
    record = clean.select(found(*one_of_each(sizes=(10, 20, 30))), now=NOW).as_dict()
    assert record["files"] == 1 and record["bytes"] == 10 and record["bytes_human"] == "10 B"
    assert record["kept_by_status"] == {"extracted": 1, "untracked": 1}
    assert record["kept_bytes"] == 50 and record["keys"] == [PREFIX + "run=a/chunk-00000.parquet"]


# --- the safety rule, for any mix of files --------------------------------------------

file_strategy = st.builds(
    stored,
    name=st.from_regex(
        r"(run=[a-c]/chunk-0000[0-9]\.parquet|manifests/run=[a-e]\.json)", fullmatch=True
    ),
    status=st.sampled_from(
        [clean.LOADED, clean.ABANDONED, clean.EXTRACTED, clean.UNTRACKED, clean.MANIFEST]
    ),
    days_old=st.floats(min_value=0, max_value=60),
)


@given(
    files=st.lists(file_strategy, max_size=30),
    days=st.one_of(st.none(), st.integers(min_value=1, max_value=60)),
    pattern=st.one_of(st.none(), st.sampled_from(["*", "run=a/*", "manifests/*", "*.json"])),
)
def test_unloaded_files_are_never_selected(files, days, pattern) -> None:
    older_than = dt.timedelta(days=days) if days else None
    plan = clean.select(found(*files), now=NOW, older_than=older_than, pattern=pattern)
    assert all(f.status in (clean.LOADED, clean.ABANDONED, clean.MANIFEST) for f in plan.delete)
    manifests = [f for f in files if f.status == clean.MANIFEST]
    if manifests:
        newest = max(manifests, key=lambda f: (f.last_modified, f.key))
        assert all(f is not newest for f in plan.delete)
    for f in plan.delete + plan.kept:
        assert older_than is None or f.last_modified < NOW - older_than
    # With include_unloaded the selection only grows, by exactly what was kept.
    wider = clean.select(
        found(*files), now=NOW, older_than=older_than, pattern=pattern, include_unloaded=True
    )
    assert {id(f) for f in wider.delete} == {id(f) for f in plan.delete + plan.kept}
    assert not wider.kept
