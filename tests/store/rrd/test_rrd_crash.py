"""kill -9 during a write: a subprocess updating a round-robin file is killed at
chosen points (and at random moments); reopened, the file must hold exactly the
state before the interrupted update or exactly the state after it."""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from opendrs.store.rrd.archive import RoundRobinFile
from opendrs.store.rrd.definition import DataSource, SourceType, parse_archive

BASE = 1_700_000_000 - 1_700_000_000 % 300
ARCHIVES = [parse_archive(a, 300) for a in ("RRA:AVERAGE:0.5:1:30", "RRA:MAX:0.5:4:10")]

CHILD = r"""
import os, signal, sys
import numpy as np
from opendrs.store.rrd.archive import RoundRobinFile
from opendrs.store.rrd import engine, journal

path, mode, first, last = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
width = int(sys.argv[5])

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if mode == "between-blocks":
    # the first block's state and rows are written, the second's not, no flip
    original = engine.Engine.apply
    calls = []
    def apply(self, *args):
        calls.append(1)
        if len(calls) == 2:
            die()
        return original(self, *args)
    engine.Engine.apply = apply
elif mode == "before-discard":
    # the selector is flipped; the journal of a multi-row update is still committed
    def discard(self):
        die()
    journal.UndoJournal.discard = discard
elif mode == "mid-append":
    original = RoundRobinFile._append_block
    def append(self, *args):
        original(self, *args)
        die()
    RoundRobinFile._append_block = append

def values(i):
    return [float((i * 7 + c) % 100) if c % 2 == 0 else float(i * 1000 + c) for c in range(width)]

f = RoundRobinFile.open(path)
if mode == "mid-append":
    from opendrs.store.rrd.definition import DataSource, SourceType
    f.add_columns([DataSource(f"new{c}", SourceType.GAUGE, 600) for c in range(9)])
for i in range(first, last + 1):
    step = 300 if mode != "before-discard" else 300 * 7
    f.update(1700000000 - 1700000000 % 300 + step * i + (i % 3) * 40, values(i))
    print(i, flush=True)
"""


def _sources(width: int) -> list[DataSource]:
    return [
        DataSource(f"s{c}", SourceType.GAUGE if c % 2 == 0 else SourceType.COUNTER, 600, 0.0)
        for c in range(width)
    ]


def _values(i: int, width: int) -> list[float]:
    return [float((i * 7 + c) % 100) if c % 2 == 0 else float(i * 1000 + c) for c in range(width)]


def _when(i: int, step: int = 300) -> int:
    return BASE + step * i + (i % 3) * 40


def _make(path: Path, width: int, updates: int, step: int = 300, capacity: int = 4) -> None:
    sources = _sources(width)
    with RoundRobinFile.create(
        path, step=300, archives=ARCHIVES, sources=sources[:capacity], start=BASE, capacity=capacity
    ) as f:
        # several blocks of `capacity` slots
        for at in range(capacity, width, capacity):
            f.add_columns(sources[at : at + capacity])
        for i in range(1, updates + 1):
            f.update(_when(i, step), _values(i, width))


def _snapshot(path: Path) -> tuple[Any, ...]:
    with RoundRobinFile.open(path, writable=False) as f:
        info = {k: v for k, v in f.info().items() if not k.endswith(("cur_row", "filename"))}
        rows = [f.stored_rows(i) for i in range(len(f.archives))]
        return (
            f.columns,
            info,
            [(list(s), np.nan_to_num(v, nan=-1e300).tolist()) for s, v in rows],
        )


def _child(path: Path, mode: str, first: int, last: int, width: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), mode, str(first), str(last), str(width)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(
    ("mode", "expect"),
    [("between-blocks", "before"), ("before-discard", "after"), ("mid-append", "before")],
)
def test_kill_at_the_worst_moment(tmp_path: Path, mode: str, expect: str) -> None:
    width = 6  # two blocks of 4 slots
    step = 300 * 7 if mode == "before-discard" else 300  # gaps: several rows per update
    path = tmp_path / "crash.odrs"
    _make(path, width, 5, step)
    before = _snapshot(path)
    child = _child(path, mode, 6, 6, width)
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr.read() if child.stderr else ""
    reference = tmp_path / "reference.odrs"
    _make(reference, width, 6, step)
    after = _snapshot(reference)
    assert before != after
    got = _snapshot(path)
    assert got == (before if expect == "before" else after)
    # and the file keeps working: the same update applied again gives the reference
    if expect == "before":
        with RoundRobinFile.open(path) as f:
            f.update(_when(6, step), _values(6, width))
        assert _snapshot(path)[1:] == after[1:]
    assert not os.path.exists(str(path) + ".journal") or _journal_clean(path)


def _journal_clean(path: Path) -> bool:
    with open(str(path) + ".journal", "rb") as j:
        head = j.read(16)
    return len(head) < 16 or head[8:16] == b"\0" * 8


def test_kill_at_random_moments(tmp_path: Path) -> None:
    """Many columns so an update takes a while; killed at random times, the file
    always equals the reference after the last update the child finished or the
    one it was doing."""
    width = 4000
    rng = random.Random(7)
    for attempt in range(4):
        path = tmp_path / f"random{attempt}.odrs"
        _make(path, width, 1, capacity=1500)
        child = _child(path, "plain", 2, 400, width)
        time.sleep(rng.uniform(0.4, 1.2))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        done = [int(line) for line in (child.stdout.read() if child.stdout else "").split()]
        with RoundRobinFile.open(path, writable=False) as f:
            last = f.last_update
        finished = 1 + len(done)
        committed = next(i for i in range(1, 402) if _when(i) == math.floor(last))
        assert committed in (finished, finished + 1)
        reference = tmp_path / f"reference{attempt}.odrs"
        _make(reference, width, committed, capacity=1500)
        assert _snapshot(path) == _snapshot(reference)
        os.remove(reference)
