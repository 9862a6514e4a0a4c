"""The bounded spools of the publisher: order, bound, restart, a record cut by a
crash, compaction; the memory spool behaves as the disk one."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opendrs.agent.spool import DiskSpool, MemorySpool, Spool
from opendrs.domain.errors import InvalidInput


def drain(spool: Spool) -> list[tuple[str, bytes]]:
    out = []
    while (item := spool.peek()) is not None:
        out.append(item)
        spool.pop()
    spool.commit()
    return out


def test_disk_spool_keeps_order_across_reopen_and_commits(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path)
    for i in range(5):
        spool.put(f"samples.{i % 2}", f"payload-{i}".encode())
    spool.pop()
    spool.commit()
    spool.pop()  # popped but not committed: a crash now replays it
    reopened = DiskSpool(tmp_path)
    assert [p for _, p in drain(reopened)] == [
        b"payload-1",
        b"payload-2",
        b"payload-3",
        b"payload-4",
    ]
    assert len(DiskSpool(tmp_path)) == 0


def test_a_record_cut_short_by_a_crash_is_discarded(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path)
    spool.put("a", b"whole")
    spool.put("b", b"cut")
    spool.close()
    log = tmp_path / "queue.log"
    log.write_bytes(log.read_bytes()[:-2])
    reopened = DiskSpool(tmp_path)
    assert drain(reopened) == [("a", b"whole")]
    reopened.put("c", b"after")
    assert drain(DiskSpool(tmp_path)) == [("c", b"after")]


def test_bounds_drop_the_oldest_and_count(tmp_path: Path) -> None:
    by_count = DiskSpool(tmp_path / "n", max_events=2)
    by_size = DiskSpool(tmp_path / "b", max_bytes=1024)
    for i in range(5):
        by_count.put("s", bytes([i]))
        by_size.put("s", bytes(400))
    assert [p for _, p in drain(by_count)] == [b"\x03", b"\x04"]
    assert by_count.dropped == 3
    assert len(by_size) == 2 and by_size.dropped == 3
    assert DiskSpool(tmp_path / "n", max_events=2).dropped == 0  # counts are per process


def test_compaction_rewrites_the_file(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path)
    big = bytes(300 * 1024)
    for _ in range(5):
        spool.put("s", big)
    for _ in range(4):
        spool.pop()
    spool.commit()
    assert (tmp_path / "queue.log").stat().st_size < 2 * len(big)
    spool.put("t", b"next")
    assert [s for s, _ in drain(DiskSpool(tmp_path))] == ["s", "t"]


def test_bad_bounds_and_directories_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="positive"):
        MemorySpool(max_events=0)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InvalidInput, match="cannot create") as err:
        DiskSpool(blocker / "sub")
    assert err.value.field == "agent.publisher.buffer_dir"


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(st.binary(max_size=50).map(lambda b: ("put", b)), st.just(("pop", b""))),
        max_size=40,
    ),
    st.integers(1, 6),
)
def test_disk_and_memory_spools_agree(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[str, bytes]], bound: int
) -> None:
    disk = DiskSpool(tmp_path_factory.mktemp("spool"), max_events=bound)
    memory = MemorySpool(max_events=bound)
    for op, payload in steps:
        for spool in (disk, memory):
            if op == "put":
                spool.put("subject", payload)
            elif spool.peek() is not None:
                spool.pop()
                spool.commit()
        assert len(disk) == len(memory) <= bound
        assert disk.peek() == memory.peek()
    assert disk.dropped == memory.dropped
