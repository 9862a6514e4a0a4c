"""The dedup window and dead-letter ids: what makes consumption idempotent."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opendrs.bus.deadletter import dead_letter
from opendrs.bus.dedup import RecentIds


def test_an_id_is_seen_once() -> None:
    recent = RecentIds(3)
    assert not recent.seen("a")
    assert recent.seen("a")
    assert not recent.seen("b")


def test_the_window_forgets_the_oldest() -> None:
    recent = RecentIds(2)
    for name in ("a", "b", "c"):
        recent.seen(name)
    assert len(recent) == 2
    assert not recent.seen("a")  # forgotten: a very late duplicate passes again
    assert recent.seen("c")


@given(st.lists(st.text(max_size=3), max_size=60), st.integers(1, 10))
def test_the_window_is_bounded_and_remembers_the_latest(ids: list[str], capacity: int) -> None:
    recent = RecentIds(capacity)
    for i in ids:
        recent.seen(i)
    assert len(recent) <= capacity
    latest = list(dict.fromkeys(reversed(ids)))[:capacity]
    assert all(recent.seen(i) for i in latest)


def test_an_empty_window_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RecentIds(0)


def test_dead_letters_of_one_message_share_an_id() -> None:
    one = dead_letter("samples.1", b"junk", "not JSON", time=1.0, key="s:7")
    again = dead_letter("samples.1", b"junk", "not JSON", time=2.0, key="s:7")
    other = dead_letter("samples.1", b"junk", "not JSON", time=1.0, key="s:8")
    by_consumer = dead_letter("samples.1", b"junk", "x", time=1.0, key="s:7", consumer="cep")
    assert one.id == again.id
    assert len({one.id, other.id, by_consumer.id}) == 3
    assert one.data == {
        "subject": "samples.1",
        "reason": "not JSON",
        "payload": "junk",
        "truncated": False,
    }
    assert by_consumer.data["consumer"] == "cep"


def test_a_huge_payload_is_cut_in_the_dead_letter() -> None:
    letter = dead_letter("samples.1", b"x" * 100_000, "too big", time=0.0)
    assert letter.data["truncated"] is True
    assert len(letter.data["payload"]) == 64 * 1024
