"""The listings cursor on its own: a pass over every channel, one watermark per channel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from salync_inventory.cursors import ListingsCursor

from salync_core.converters import parse_datetime

NOON = datetime(2026, 11, 23, 12, tzinfo=UTC)


def test_a_pass_reads_each_channel_page_by_page_then_stamps_its_watermark() -> None:
    cursor = ListingsCursor().start(["ch_a", "ch_b"], NOON)
    assert (cursor.current, cursor.since) == ("ch_a", {})

    cursor = cursor.advance("page-2-of-a")
    assert (cursor.current, cursor.next) == ("ch_a", "page-2-of-a")
    cursor = cursor.advance(None)
    assert (cursor.current, cursor.next) == ("ch_b", None)
    cursor = cursor.advance(None)

    assert not cursor.in_progress
    assert cursor.since == {"ch_a": "2026-11-23T11:59:58Z", "ch_b": "2026-11-23T11:59:58Z"}


def test_the_next_pass_is_incremental_for_known_channels_and_whole_for_new_ones() -> None:
    first = ListingsCursor().start(["ch_a"], NOON).advance(None)

    second = first.start(["ch_a", "ch_new"], NOON + timedelta(hours=1))

    assert second.pending == ("ch_a", "ch_new")
    assert second.since == {"ch_a": "2026-11-23T11:59:58Z"}  # ch_new has none: read it whole


def test_a_channel_that_disappeared_loses_its_watermark() -> None:
    first = ListingsCursor().start(["ch_a", "ch_gone"], NOON).advance(None).advance(None)

    second = first.start(["ch_a"], NOON + timedelta(hours=1))

    assert set(second.since) == {"ch_a"}


def test_a_workspace_without_channels_completes_at_once() -> None:
    cursor = ListingsCursor().start([], NOON)
    assert not cursor.in_progress
    assert cursor.current is None


def test_a_stored_pass_resumes_where_it_stopped() -> None:
    stopped = ListingsCursor().start(["ch_a", "ch_b"], NOON).advance(None).advance("p2")

    resumed = ListingsCursor.from_json(stopped.to_json())

    assert resumed == stopped
    assert (resumed.current, resumed.next) == ("ch_b", "p2")
    assert resumed.start(["ch_c"], NOON + timedelta(hours=1)) == resumed  # no restart mid-pass


def test_an_unreadable_stored_cursor_starts_over() -> None:
    for stored in (None, "x", {"since": []}, {"since": {}, "pending": [1], "pass_start": "t"}):
        assert ListingsCursor.from_json(stored) == ListingsCursor()


channels = st.lists(st.sampled_from(["ch_a", "ch_b", "ch_c"]), max_size=3, unique=True)
steps = st.lists(st.tuples(channels, st.integers(-3600, 7200), st.integers(0, 2)), max_size=6)


@given(steps)
def test_watermarks_never_move_backwards(passes: list[tuple[list[str], int, int]]) -> None:
    cursor = ListingsCursor()
    for listed, offset, pages in passes:
        before = dict(cursor.since)
        cursor = cursor.start(listed, NOON + timedelta(seconds=offset))
        while cursor.current is not None:
            for page in range(pages):
                cursor = cursor.advance(f"p{page}")
            cursor = cursor.advance(None)
        cursor = ListingsCursor.from_json(cursor.to_json())
        for channel, since in cursor.since.items():
            if channel in before:
                assert parse_datetime(since) >= parse_datetime(before[channel])
