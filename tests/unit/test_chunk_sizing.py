"""Rows per chunk when no setting gives them: chosen from the table's size and row width
(`plan.choose_chunk_rows`), the rule documented above it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from myshift.plan import (
    CHUNK_ESTIMATE_HEADROOM,
    CHUNK_MAX_ROWS,
    CHUNK_MAX_SOURCE_BYTES,
    CHUNK_MIN_ROWS,
    CHUNK_ROWS_UNKNOWN_SIZE,
    CHUNK_WAVES,
    TableSize,
    choose_chunk_rows,
)

MIB = 1024 * 1024


def chunks(size: TableSize, chunk_rows: int) -> int:
    return -(-size.rows // chunk_rows)


@pytest.mark.parametrize(
    ("rows", "avg_row_bytes", "concurrency", "expected"),
    [
        # bench/cli_sync.py's table: one chunk per concurrent extraction, sized for 10% more
        # rows than the estimate (InnoDB's TABLE_ROWS said 990,000 for 1,000,000 rows).
        (1_000_000, 200, 2, 550_000),
        (990_000, 200, 2, 545_000),
        (1_000_000, 200, 4, 275_000),
        # Rounded up to 1,000 rows.
        (1_000_001, 200, 2, 551_000),
        # Small tables: at least CHUNK_MIN_ROWS a chunk (one chunk holds them all).
        (30_000, 200, 2, CHUNK_MIN_ROWS),
        (0, 0, 2, CHUNK_ROWS_UNKNOWN_SIZE),  # no statistics: the former fixed default
        # Wide rows (16 KB each): the byte limit, not the concurrency, sizes the chunks.
        (1_000_000, 16_384, 2, CHUNK_MAX_SOURCE_BYTES // 16_384),
        # Rows wider than the byte limit: one row a chunk.
        (10, CHUNK_MAX_SOURCE_BYTES * 2, 2, 1),
        # Narrow rows of a huge table: CHUNK_MAX_ROWS at most.
        (10**10, 8, 2, CHUNK_MAX_ROWS),
    ],
)
def test_examples(rows: int, avg_row_bytes: int, concurrency: int, expected: int) -> None:
    assert choose_chunk_rows(TableSize(rows, avg_row_bytes), concurrency) == expected


sizes = st.builds(TableSize, rows=st.integers(1, 10**11), avg_row_bytes=st.integers(1, 64 * MIB))
concurrency = st.integers(1, 40)


@given(sizes, concurrency)
def test_a_chunk_fits_the_extract_functions_tmp_and_the_config_bounds(
    size: TableSize, concurrency: int
) -> None:
    chosen = choose_chunk_rows(size, concurrency)
    assert 1 <= chosen <= CHUNK_MAX_ROWS
    assert chosen == 1 or chosen * size.avg_row_bytes <= CHUNK_MAX_SOURCE_BYTES


@given(sizes, concurrency)
def test_never_more_chunks_than_the_extractions_can_take_unless_a_limit_says_so(
    size: TableSize, concurrency: int
) -> None:
    chosen = choose_chunk_rows(size, concurrency)
    limited = chosen in (CHUNK_MAX_ROWS, CHUNK_MAX_SOURCE_BYTES // size.avg_row_bytes, 1)
    assert limited or chunks(size, chosen) <= concurrency * CHUNK_WAVES


@given(sizes, concurrency)
def test_enough_chunks_to_use_the_concurrency_when_the_table_is_large_enough(
    size: TableSize, concurrency: int
) -> None:
    chosen = choose_chunk_rows(size, concurrency)
    wanted = concurrency * CHUNK_WAVES
    if size.rows >= wanted * (CHUNK_MIN_ROWS + 1_000):
        # The headroom (and rounding to 1,000 rows) leaves the last extractions shorter
        # chunks: none idle at 10 or fewer at once, one in 10 at most above.
        enough = min(wanted, max(1, int(wanted / (CHUNK_ESTIMATE_HEADROOM + 0.02))))
        assert chunks(size, chosen) >= enough or chosen == CHUNK_MAX_ROWS


@given(st.integers(50_000, 10**9), concurrency, st.floats(0.91, 1.0))
def test_an_estimate_up_to_9_percent_low_leaves_no_extra_chunk(
    actual: int, concurrency: int, ratio: float
) -> None:
    estimate = TableSize(int(actual * ratio), 200)
    chosen = choose_chunk_rows(estimate, concurrency)
    limited = chosen in (CHUNK_MAX_ROWS, CHUNK_MAX_SOURCE_BYTES // 200, CHUNK_MIN_ROWS)
    assert limited or -(-actual // chosen) <= concurrency * CHUNK_WAVES


@given(sizes, st.integers(1, 10**11), concurrency)
def test_a_larger_table_never_gets_smaller_chunks(
    size: TableSize, more: int, concurrency: int
) -> None:
    larger = TableSize(size.rows + more, size.avg_row_bytes)
    assert choose_chunk_rows(larger, concurrency) >= choose_chunk_rows(size, concurrency)


@given(sizes, st.integers(1, 64 * MIB), concurrency)
def test_wider_rows_never_get_more_rows_a_chunk(
    size: TableSize, wider: int, concurrency: int
) -> None:
    widened = TableSize(size.rows, size.avg_row_bytes + wider)
    assert choose_chunk_rows(widened, concurrency) <= choose_chunk_rows(size, concurrency)
