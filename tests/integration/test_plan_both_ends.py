"""Chunk boundaries walked from both ends at once, on MariaDB.

Whatever the two walks saw, the chunks must tile `lower < key <= last key` with no gap
and no overlap, hold at most `limit` rows each (all but one exactly `limit`), and say
how many rows they hold. The walks are also forced to run blind to each other (each
end walks the whole range), the worst crossing the merge can meet.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pymysql
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from myshift import catalog, plan
from myshift.config import TableConfig
from myshift.errors import SourceUnavailableError

from tests.support import mariadb

DATABASE = "myshift_plan_ends_it"
TABLE = "settle_orders"
ROWS = 1_003  # four rows share each updated_at: ties across every boundary


@pytest.fixture(scope="module")
def conn() -> Iterator[pymysql.Connection]:
    with mariadb.sample_database(DATABASE, TABLE, ROWS) as connection:
        yield connection


@pytest.fixture(scope="module")
def other() -> Iterator[pymysql.Connection]:
    connection = mariadb.connect(utc=True)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def columns(conn: pymysql.Connection):
    table = TableConfig(name=f"{DATABASE}.{TABLE}", cursor="updated_at", primary_key=["id"])
    return catalog.source_columns(conn, table, None)


@pytest.fixture(scope="module")
def all_keys(conn: pymysql.Connection) -> list[list]:
    return mariadb.ordered_keys(conn, DATABASE, TABLE)


def both_ends(conn, other, columns, **options) -> plan.TablePlan:
    opened: list[pymysql.Connection] = []

    def second() -> pymysql.Connection:
        opened.append(other)
        return other

    result = mariadb.plan_table(conn, DATABASE, TABLE, columns, second_connection=second, **options)
    assert opened == [other], "the second connection was not used"
    return result


def assert_tiles(result: plan.TablePlan, all_keys: list[list], lower_index: int, limit: int):
    """Chunks tile the keys after `all_keys[lower_index]` exactly; sizes as promised."""
    expected_lower = None if lower_index < 0 else all_keys[lower_index]
    assert result.chunks[0].lower == expected_lower
    assert result.chunks[-1].upper == all_keys[-1] == result.upper_key
    for before, after in zip(result.chunks, result.chunks[1:], strict=False):
        assert after.lower == before.upper  # no gap, no overlap
    position = {tuple(key): i for i, key in enumerate(all_keys)}
    previous = lower_index
    sizes = []
    for chunk in result.chunks:
        upper = position[tuple(chunk.upper)]
        assert upper > previous, "a chunk that goes backwards"
        sizes.append(upper - previous)
        previous = upper
    assert [c.rows for c in result.chunks] == sizes  # each chunk says how many it holds
    assert sum(sizes) == len(all_keys) - 1 - lower_index
    assert max(sizes) <= limit
    assert sum(1 for size in sizes if size != limit) <= 1  # only where the walks met
    assert [c.index for c in result.chunks] == list(range(len(result.chunks)))


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 7, 100, 250, 501, 502, 1_002, 1_003, 5_000])
def test_both_ends_tile_the_keys(conn, other, columns, all_keys, limit: int) -> None:
    result = both_ends(conn, other, columns, limit=limit)
    assert_tiles(result, all_keys, -1, limit)
    # The same rows as the walk from one end, in as many chunks or one more.
    one_end = mariadb.plan_table(conn, DATABASE, TABLE, columns, limit=limit)
    assert result.planned_rows == one_end.planned_rows == ROWS
    assert len(one_end.chunks) <= len(result.chunks) <= len(one_end.chunks) + 1


@given(lower_index=st.integers(-1, ROWS - 2), limit=st.integers(1, 400))
@settings(max_examples=40, deadline=None)
def test_both_ends_from_any_watermark(conn, other, columns, all_keys, lower_index, limit) -> None:
    lower = None if lower_index < 0 else all_keys[lower_index]
    result = both_ends(conn, other, columns, limit=limit, lower=lower)
    assert_tiles(result, all_keys, lower_index, limit)


@pytest.mark.parametrize("limit", [1, 3, 100, 333, 1_003])
def test_blind_walks_still_tile(conn, other, columns, all_keys, limit, monkeypatch) -> None:
    # Each end sees only where the other started: both walk the whole range and cross
    # everywhere. The merge keeps the lower walk and the top walk's keys above it.
    start = plan._Frontier.read

    def stale(self: plan._Frontier) -> tuple:
        if not hasattr(self, "first"):
            self.first = start(self)
        return self.first

    monkeypatch.setattr(plan._Frontier, "read", stale)
    assert_tiles(both_ends(conn, other, columns, limit=limit), all_keys, -1, limit)


def test_max_chunks_and_null_cursors_walk_from_one_end(conn, other, columns) -> None:
    def unused() -> pymysql.Connection:
        raise AssertionError("a run with --max-chunks must walk from one end")

    capped = mariadb.plan_table(
        conn, DATABASE, TABLE, columns, limit=10, max_chunks=3, second_connection=unused
    )
    assert [c.rows for c in capped.chunks] == [10, 10, 10]
    with_nulls = mariadb.plan_table(
        conn, DATABASE, TABLE, columns, limit=500, load_null_cursor=True, second_connection=unused
    )
    assert with_nulls.planned_rows == ROWS


def test_a_string_key_walks_from_one_end(conn, columns) -> None:
    # Collations order strings; Python does not know them: no two-ended walk.
    as_text = [
        c if c.source_name != "id" else dataclasses.replace(c, data_type="varchar") for c in columns
    ]

    def unused() -> pymysql.Connection:
        raise AssertionError("a string key must walk from one end")

    result = mariadb.plan_table(conn, DATABASE, TABLE, as_text, limit=100, second_connection=unused)
    assert result.planned_rows == ROWS


def test_an_empty_range_has_no_chunks(conn, other, columns, all_keys) -> None:
    assert both_ends(conn, other, columns, limit=10, lower=all_keys[-1]).chunks == []


def test_a_failing_end_fails_the_plan_and_frees_both_connections(
    conn, other, columns, monkeypatch
) -> None:
    real = plan.query_all

    def lost_on_the_way_down(connection, sql, params=()):
        if connection is other and "DESC LIMIT 1 OFFSET" in sql:
            raise SourceUnavailableError("MySQL connection lost (test)")
        return real(connection, sql, params)

    monkeypatch.setattr(plan, "query_all", lost_on_the_way_down)
    with pytest.raises(SourceUnavailableError, match="lost"):
        both_ends(conn, other, columns, limit=10)
    # Both connections are usable again, out of any transaction.
    for connection in (conn, other):
        with connection.cursor() as cursor:
            cursor.execute("SELECT @@in_transaction")
            assert cursor.fetchone() == (0,)
