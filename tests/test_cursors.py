"""The watermark cursor: pure rules, checked as properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from salync_core.converters import parse_datetime
from salync_core.state.cursors import OVERLAP, WatermarkCursor

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_a_pass_starts_at_platform_time_less_the_overlap_and_completes_into_since() -> None:
    cursor = WatermarkCursor().begin(NOW)
    assert cursor.in_progress
    assert parse_datetime(cursor.pass_start or "") == NOW - OVERLAP
    cursor = cursor.advance("https://host/next")
    assert cursor.next == "https://host/next"
    done = cursor.advance(None)
    assert not done.in_progress
    assert done.since == cursor.pass_start
    assert done.next is None


def test_a_pass_in_progress_keeps_its_start_when_resumed() -> None:
    cursor = WatermarkCursor().begin(NOW).advance("next-1")
    assert cursor.begin(NOW + timedelta(hours=1)) == cursor


def test_unreadable_cursors_start_over() -> None:
    assert WatermarkCursor.from_json("garbage") == WatermarkCursor()
    assert WatermarkCursor.from_json({"since": 3}) == WatermarkCursor()


offsets = st.lists(st.integers(min_value=-3600, max_value=3600), min_size=1, max_size=20)


@given(offsets)
def test_since_never_moves_backwards(offsets: list[int]) -> None:
    cursor = WatermarkCursor()
    previous = None
    for offset in offsets:
        cursor = cursor.begin(NOW + timedelta(seconds=offset)).advance(None)
        since = parse_datetime(cursor.since or "")
        assert previous is None or since >= previous
        previous = since


@given(st.lists(st.one_of(st.none(), st.text(min_size=1, max_size=5)), max_size=10))
def test_a_stored_cursor_reads_back_the_same(tokens: list[str | None]) -> None:
    cursor = WatermarkCursor().begin(NOW)
    for token in tokens:
        cursor = cursor.advance(token)
        assert WatermarkCursor.from_json(cursor.to_json()) == cursor
