"""A round-robin file holding many series (a host's, or one rrdtool-style RRD):
memory-mapped, updated for all its columns in one vectorised call, columns added
and retired without touching the others' history, and every update all-or-nothing
even if the process is killed in the middle.

Layout: a 16 KiB header (step, archives, two copies of the clock and ring
positions, which copy is live, block table) followed by page-aligned blocks. A
block holds a fixed number of column slots: their names and definitions, two
copies of their librrd state, and one ring per archive laid out row by row (one
spare row more than the archive keeps), so an update writes one contiguous row
per archive. Adding columns beyond the free slots appends a block; nothing
existing is rewritten.

Atomicity: an update works on the spare state copy and the spare ring row, then
flips one 8-byte selector in the header. Only what the live copy can see and an
update must overwrite (several rows at once after a gap, layout changes) goes
through the undo journal first."""

from __future__ import annotations

import fcntl
import math
import mmap
import os
import struct
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from opendrs.domain.clock import Clock, WallClock
from opendrs.domain.errors import InvalidInput, NotFound
from opendrs.store.rrd.definition import (
    EARLIEST_TIME,
    Archive,
    Consolidation,
    DataSource,
    SourceType,
    validate_column_name,
)
from opendrs.store.rrd.engine import (
    ColumnParams,
    ColumnState,
    Engine,
    Readings,
    Tick,
    initial_state_values,
)
from opendrs.store.rrd.fetch import FetchPlan, parse_cf, plan_fetch, row_slots
from opendrs.store.rrd.journal import Bytes, UndoJournal, journal_path

MAGIC = b"ODRSRRD1"
BLOCK_MAGIC = b"ODRSBLK1"
FORMAT_VERSION = 1
PAGE = 4096
HEADER_SIZE = 16384
MAX_ARCHIVES = 64
MAX_BLOCKS = 1024
NAME_BYTES = 128
BLOCK_HEAD = 64
DEFAULT_CAPACITY = 16

# header, as int64 cells
_H_VERSION, _H_STEP, _H_NRRA, _H_NBLOCKS = 1, 2, 3, 4
_H_LAYOUT, _H_START, _H_CAPACITY, _H_SELECTOR = 5, 6, 7, 8
# two live sections (selector picks one): last update, usec, generation, ring rows
_LIVE_AT = (16, 88)
_L_LAST_UP, _L_LAST_USEC, _L_GENERATION, _L_CUR_ROW = 0, 1, 2, 3
_RRA_AT = 160  # cell index: 64 archives x 4 cells (cf, steps, rows, xff as float)
_BLOCKS_AT = 416  # cell index: 1024 block offsets
_LAYOUT_BYTES = _RRA_AT * 8  # the header bytes a layout change may touch

# column parameters, as rows of a block's param area
_P_KIND, _P_HEARTBEAT, _P_MIN, _P_MAX, _P_STATUS, _P_ADDED, _P_RETIRED = range(7)
_PARAM_ROWS = 8
FREE, ACTIVE, RETIRED = 0, 1, 2
_BASE_STATE_ROWS = 5

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Fetched:
    """A fetch: rows at start+step … end, each covering the step before it."""

    start: int
    end: int
    step: int
    names: tuple[str, ...]
    values: F64  # shape (rows, columns), NaN for unknown
    archive: int

    @property
    def timestamps(self) -> npt.NDArray[np.int64]:
        return self.start + self.step * np.arange(1, len(self.values) + 1, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Batch:
    """Readings of the active columns at several times (arrays of shape (T, C))."""

    seconds: Sequence[int]
    usecs: Sequence[int]
    value: F64
    unknown: npt.NDArray[np.bool_]
    magnitude: npt.NDArray[np.uint64] | None
    negative: npt.NDArray[np.bool_] | None


def _geometry(capacity: int, archives: Sequence[Archive]) -> tuple[int, int, int, list[int], int]:
    """Offsets in a block: params, state (two copies), rows per state copy,
    rings (rows+1 each), total size."""
    names_at = BLOCK_HEAD
    params_at = names_at + capacity * NAME_BYTES
    state_at = params_at + _PARAM_ROWS * capacity * 8
    state_rows = _BASE_STATE_ROWS + 2 * len(archives)
    rings_at = []
    position = state_at + 2 * state_rows * capacity * 8
    for archive in archives:
        rings_at.append(position)
        position += (archive.rows + 1) * capacity * 8
    size = -(-position // PAGE) * PAGE
    return params_at, state_at, state_rows, rings_at, size


class _Block:
    """One mapped block: views of its parameters, state and rings."""

    def __init__(self, mm: mmap.mmap, offset: int, archives: Sequence[Archive]) -> None:
        self.mm = mm
        self.offset = offset
        head = np.frombuffer(mm, dtype=np.int64, count=8)
        if bytes(mm[:8]) != BLOCK_MAGIC:
            raise InvalidInput("block magic missing: not an opendrs round-robin file")
        self.capacity = capacity = int(head[1])
        params_at, state_at, state_rows, rings_at, size = _geometry(capacity, archives)
        self.size = size
        self.params_at = params_at
        self.state_at = state_at
        self.state_bytes = state_rows * capacity * 8
        self.rings_at = rings_at
        self.names = np.frombuffer(mm, dtype=f"S{NAME_BYTES}", count=capacity, offset=BLOCK_HEAD)
        self.params_i = np.frombuffer(
            mm, dtype=np.int64, count=_PARAM_ROWS * capacity, offset=params_at
        ).reshape(_PARAM_ROWS, capacity)
        self.params_f = self.params_i.view(np.float64)
        self.raw_states: list[npt.NDArray[np.int64]] = []
        self.states: list[ColumnState] = []
        for copy in (0, 1):
            state_i = np.frombuffer(
                mm,
                dtype=np.int64,
                count=state_rows * capacity,
                offset=state_at + copy * self.state_bytes,
            ).reshape(state_rows, capacity)
            state_f = state_i.view(np.float64)
            state_u = state_i.view(np.uint64)
            self.raw_states.append(state_i)
            self.states.append(
                ColumnState(
                    last_value=state_f[0],
                    last_mag=state_u[1],
                    last_sign=state_i[2],
                    pdp_val=state_f[3],
                    unknown_sec=state_i[4],
                    cdp_val=[state_f[_BASE_STATE_ROWS + 2 * r] for r in range(len(archives))],
                    cdp_unknown=[
                        state_i[_BASE_STATE_ROWS + 2 * r + 1] for r in range(len(archives))
                    ],
                )
            )
        self.rings = [
            np.frombuffer(mm, dtype=np.float64, count=(a.rows + 1) * capacity, offset=at).reshape(
                a.rows + 1, capacity
            )
            for a, at in zip(archives, rings_at, strict=True)
        ]
        self.reload()

    def reload(self) -> None:
        status = self.params_i[_P_STATUS]
        active = status == ACTIVE
        # free and retired slots run as unbounded gauges fed only unknowns
        self.status = status.copy()
        self.params = ColumnParams(
            kind=np.where(active, self.params_i[_P_KIND], int(SourceType.GAUGE)).astype(np.int64),
            heartbeat=np.where(active, self.params_f[_P_HEARTBEAT], math.inf),
            minimum=np.where(active, self.params_f[_P_MIN], math.nan),
            maximum=np.where(active, self.params_f[_P_MAX], math.nan),
        )
        self.active_slots = np.flatnonzero(status == ACTIVE)
        self.dense = len(self.active_slots) == self.capacity

    def release(self) -> None:
        del self.names, self.params_i, self.params_f, self.states, self.raw_states, self.rings
        # a caller may still hold a view; the GC unmaps it then
        with suppress(BufferError):
            self.mm.close()


class RoundRobinFile:
    """Open with `RoundRobinFile.create(...)` or `RoundRobinFile.open(path)`."""

    def __init__(
        self, path: str, fd: int, writable: bool, durable: bool, clock: Clock | None
    ) -> None:
        self.path = path
        self._fd = fd
        self.writable = writable
        self._clock = clock or WallClock()
        access = mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ
        self._access = access
        self._hmm = mmap.mmap(fd, HEADER_SIZE, access=access)
        self._h = np.frombuffer(self._hmm, dtype=np.int64, count=HEADER_SIZE // 8)
        if bytes(self._hmm[:8]) != MAGIC:
            self.close()
            raise InvalidInput("not an opendrs round-robin file", source=path)
        if int(self._h[_H_VERSION]) != FORMAT_VERSION:
            self.close()
            raise InvalidInput(
                f"unsupported format version {int(self._h[_H_VERSION])}", source=path
            )
        self.step = int(self._h[_H_STEP])
        count = int(self._h[_H_NRRA])
        cells = self._h[_RRA_AT : _RRA_AT + 4 * count].reshape(count, 4)
        self.archives = tuple(
            Archive(
                Consolidation(int(c[0])),
                float(c[3:4].view(np.float64)[0]),
                int(c[1]),
                int(c[2]),
            )
            for c in cells
        )
        self._engine = Engine(self.step, self.archives)
        self._journal = UndoJournal(path, durable=durable) if writable else None
        self._blocks: list[_Block] = []
        self._layout = -1
        # flock excludes other processes; threads sharing this handle need this too
        self._thread_lock = threading.RLock()
        self._load_layout()

    # --- opening ------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        step: int,
        archives: Sequence[Archive],
        sources: Sequence[DataSource] = (),
        start: float | None = None,
        capacity: int | None = None,
        overwrite: bool = True,
        durable: bool = False,
        clock: Clock | None = None,
    ) -> RoundRobinFile:
        """A new file; `start` defaults to now-10 s as in rrdtool. Written to a
        temporary name and renamed, so a crash never leaves half a file."""
        path = os.fspath(path)
        clock = clock or WallClock()
        if step < 1:
            raise InvalidInput(f"step {step} must be a positive number of seconds", source=path)
        if not archives:
            raise InvalidInput("at least one archive is needed", source=path)
        if len(archives) > MAX_ARCHIVES:
            raise InvalidInput(f"at most {MAX_ARCHIVES} archives", source=path)
        if not overwrite and os.path.exists(path):
            raise InvalidInput("file exists", source=path)
        begin = int(clock.now() - 10) if start is None else int(start)
        if begin < EARLIEST_TIME:
            raise InvalidInput(f"start {begin} is before 1980", source=path, field="start")
        _check_sources(sources, path)
        temporary = f"{path}.tmp{os.getpid()}"
        fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.ftruncate(fd, HEADER_SIZE)
            with mmap.mmap(fd, HEADER_SIZE) as hmm:
                h = np.frombuffer(hmm, dtype=np.int64, count=HEADER_SIZE // 8)
                hmm[:8] = MAGIC
                h[_H_VERSION] = FORMAT_VERSION
                h[_H_STEP] = step
                h[_H_NRRA] = len(archives)
                for live in _LIVE_AT:
                    h[live + _L_LAST_UP] = begin
                    for i, archive in enumerate(archives):
                        # the first row goes to slot 0
                        h[live + _L_CUR_ROW + i] = archive.rows
                h[_H_START] = begin
                h[_H_CAPACITY] = capacity or max(DEFAULT_CAPACITY, len(sources))
                for i, archive in enumerate(archives):
                    base = _RRA_AT + 4 * i
                    h[base] = int(archive.cf)
                    h[base + 1] = archive.steps
                    h[base + 2] = archive.rows
                    h[base + 3 : base + 4].view(np.float64)[0] = archive.xff
                del h
            os.fsync(fd) if durable else None
        except BaseException:
            os.close(fd)
            os.unlink(temporary)
            raise
        os.close(fd)
        # the new file must not inherit the journal of the file it replaces
        with suppress(FileNotFoundError):
            os.unlink(journal_path(path))
        os.replace(temporary, path)
        archive_file = cls.open(path, writable=True, durable=durable, clock=clock)
        if sources:
            archive_file.add_columns(sources, capacity=capacity)
        return archive_file

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        writable: bool = True,
        durable: bool = False,
        clock: Clock | None = None,
    ) -> RoundRobinFile:
        """Open an existing file, first undoing an update its writer did not finish."""
        path = os.fspath(path)
        try:
            fd = os.open(path, os.O_RDWR if writable else os.O_RDONLY)
        except FileNotFoundError:
            raise NotFound("round-robin file", path) from None
        try:
            _recover(path, fd, writable)
            if os.fstat(fd).st_size < HEADER_SIZE:
                raise InvalidInput("file too short: not an opendrs round-robin file", source=path)
            return cls(path, fd, writable, durable, clock)
        except BaseException:
            os.close(fd)
            raise

    def close(self) -> None:
        for block in self._blocks:
            block.release()
        self._blocks = []
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        if getattr(self, "_hmm", None) is not None:
            del self._h
            self._hmm.close()
            self._hmm = None  # type: ignore[assignment]
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> RoundRobinFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- layout -------------------------------------------------------------

    def _load_layout(self) -> None:
        """(Re)map the blocks if the header says the columns changed."""
        layout = int(self._h[_H_LAYOUT])
        count = int(self._h[_H_NBLOCKS])
        if layout == self._layout and count == len(self._blocks):
            return
        for block in self._blocks:
            block.release()
        self._blocks = []
        for i in range(count):
            offset = int(self._h[_BLOCKS_AT + i])
            head = os.pread(self._fd, 16, offset)
            capacity = int(np.frombuffer(head, dtype=np.int64)[1])
            size = _geometry(capacity, self.archives)[-1]
            mm = mmap.mmap(self._fd, size, access=self._access, offset=offset)
            self._blocks.append(_Block(mm, offset, self.archives))
        self._layout = layout
        self._index_columns()

    def _index_columns(self) -> None:
        names: list[str] = []
        where: dict[str, tuple[int, int]] = {}
        retired: list[str] = []
        retired_where: dict[str, tuple[int, int]] = {}
        for b, block in enumerate(self._blocks):
            raw = block.names
            for slot in range(block.capacity):
                status = block.status[slot]
                if status == FREE:
                    continue
                name = bytes(raw[slot]).rstrip(b"\0").decode()
                if status == ACTIVE:
                    names.append(name)
                    where[name] = (b, slot)
                else:
                    retired.append(name)
                    retired_where[name] = (b, slot)  # the latest retired wins
        self._names = names
        self._where = where
        self._retired = retired
        self._retired_where = retired_where
        parts = [b.params_i[_P_KIND, b.active_slots] for b in self._blocks]
        self._kinds = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        self._counters = (self._kinds == SourceType.COUNTER) | (self._kinds == SourceType.DERIVE)
        self._any_counters = bool(self._counters.any())
        # position of each block's active slots in the vector of active columns
        self._block_positions: list[npt.NDArray[np.int64]] = []
        position = 0
        for block in self._blocks:
            n = len(block.active_slots)
            self._block_positions.append(np.arange(position, position + n, dtype=np.int64))
            position += n

    @contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        with self._thread_lock:
            if self._fd < 0:
                raise InvalidInput("round-robin file is closed", source=self.path)
            fcntl.flock(self._fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                self._load_layout()
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _require_writable(self) -> UndoJournal:
        if not self.writable or self._journal is None:
            raise InvalidInput("opened read-only", source=self.path)
        return self._journal

    @property
    def columns(self) -> list[str]:
        """The active columns, in the order updates and fetches use."""
        with self._locked(False):
            return list(self._names)

    @property
    def retired(self) -> list[str]:
        with self._locked(False):
            return list(self._retired)

    @property
    def last_update(self) -> float:
        live = self._live()
        return int(self._h[live + _L_LAST_UP]) + int(self._h[live + _L_LAST_USEC]) / 1e6

    def _selector(self) -> int:
        return int(self._h[_H_SELECTOR])

    def _live(self) -> int:
        return _LIVE_AT[self._selector()]

    def _last_up(self) -> int:
        return int(self._h[self._live() + _L_LAST_UP])

    def _cur_rows(self) -> list[int]:
        base = self._live() + _L_CUR_ROW
        return [int(c) for c in self._h[base : base + len(self.archives)]]

    def source(self, name: str) -> DataSource:
        with self._locked(False):
            return self._source(name)

    def sources(self) -> list[DataSource]:
        with self._locked(False):
            return [self._source(n) for n in self._names]

    def _source(self, name: str) -> DataSource:
        if name not in self._where:
            raise NotFound("column", name)
        b, slot = self._where[name]
        block = self._blocks[b]
        return DataSource(
            name,
            SourceType(int(block.params_i[_P_KIND, slot])),
            int(block.params_f[_P_HEARTBEAT, slot]),
            float(block.params_f[_P_MIN, slot]),
            float(block.params_f[_P_MAX, slot]),
        )

    def add_columns(self, sources: Sequence[DataSource], *, capacity: int | None = None) -> None:
        """Add series; their history starts unknown at the last update. Free
        slots are used first, then one new block is appended for the rest."""
        journal = self._require_writable()
        _check_sources(sources, self.path)
        with self._locked(True):
            clash = [s.name for s in sources if s.name in self._where]
            if clash:
                raise InvalidInput(f"column {clash[0]!r} already exists", source=self.path)
            free = [
                (b, int(slot))
                for b, block in enumerate(self._blocks)
                for slot in np.flatnonzero(block.status == FREE)
            ]
            need_block = len(sources) > len(free)
            segments: list[tuple[int, Bytes]] = [(0, self._hmm[:_LAYOUT_BYTES])]
            touched = sorted({b for b, _ in free[: len(sources)]})
            for b in touched:
                block = self._blocks[b]
                end = block.state_at + 2 * block.state_bytes
                segments.append((block.offset, block.mm[:end]))
            new_offset = 0
            new_capacity = 0
            if need_block:
                if len(self._blocks) >= MAX_BLOCKS:
                    raise InvalidInput(f"at most {MAX_BLOCKS} blocks per file", source=self.path)
                new_capacity = max(capacity or int(self._h[_H_CAPACITY]), len(sources) - len(free))
                new_offset = self._end_of_blocks()
            journal.save(segments, self._selector())
            if need_block:
                self._append_block(new_offset, new_capacity)
                free += [(len(self._blocks) - 1, slot) for slot in range(new_capacity)]
            last_up = self._last_up()
            unknown_sec, unknown_pdps = initial_state_values(self.step, self.archives, last_up)
            for source, (b, slot) in zip(sources, free, strict=False):
                block = self._blocks[b]
                block.names[slot] = source.name.encode()
                block.params_i[_P_KIND, slot] = int(source.type)
                block.params_f[_P_HEARTBEAT, slot] = float(source.heartbeat)
                block.params_f[_P_MIN, slot] = source.min
                block.params_f[_P_MAX, slot] = source.max
                block.params_i[_P_STATUS, slot] = ACTIVE
                block.params_i[_P_ADDED, slot] = last_up
                for state in block.states:
                    _reset_slot(state, slot, unknown_sec, unknown_pdps)
            self._h[_H_LAYOUT] += 1
            journal.discard()
            self._layout = -1
            self._load_layout()

    def retire_columns(self, names: Sequence[str]) -> None:
        """Stop a series (its VM is gone): its history stays readable until the
        rings overwrite it; updates treat it as unknown from now on."""
        journal = self._require_writable()
        with self._locked(True):
            missing = [n for n in names if n not in self._where]
            if missing:
                raise NotFound("column", missing[0])
            segments: list[tuple[int, Bytes]] = [(0, self._hmm[:_LAYOUT_BYTES])]
            for b in sorted({self._where[n][0] for n in names}):
                block = self._blocks[b]
                segments.append(
                    (block.offset + block.params_at, block.mm[block.params_at : block.state_at])
                )
            journal.save(segments, self._selector())
            last_up = self._last_up()
            for name in names:
                b, slot = self._where[name]
                self._blocks[b].params_i[_P_STATUS, slot] = RETIRED
                self._blocks[b].params_i[_P_RETIRED, slot] = last_up
            self._h[_H_LAYOUT] += 1
            journal.discard()
            self._layout = -1
            self._load_layout()

    def _end_of_blocks(self) -> int:
        if not self._blocks:
            return HEADER_SIZE
        last = self._blocks[-1]
        return last.offset + last.size

    def _append_block(self, offset: int, capacity: int) -> None:
        size = _geometry(capacity, self.archives)[-1]
        os.ftruncate(self._fd, offset + size)
        mm = mmap.mmap(self._fd, size, access=self._access, offset=offset)
        mm[:8] = BLOCK_MAGIC
        head = np.frombuffer(mm, dtype=np.int64, count=8)
        head[1] = capacity
        head[2] = len(self.archives)
        del head
        params_at, state_at, _, _, _ = _geometry(capacity, self.archives)
        floats = np.frombuffer(mm, dtype=np.float64, count=(size - state_at) // 8, offset=state_at)
        floats[:] = math.nan  # state and rings start unknown
        del floats
        params = np.frombuffer(
            mm, dtype=np.int64, count=_PARAM_ROWS * capacity, offset=params_at
        ).reshape(_PARAM_ROWS, capacity)
        params[:] = 0
        params[_P_HEARTBEAT:_P_STATUS] = np.float64(math.nan).view(np.int64)
        del params
        block = _Block(mm, offset, self.archives)
        unknown_sec, unknown_pdps = initial_state_values(self.step, self.archives, self._last_up())
        for state in block.states:
            _reset_slot(state, slice(None), unknown_sec, unknown_pdps)
        self._h[_BLOCKS_AT + len(self._blocks)] = offset
        self._h[_H_NBLOCKS] = len(self._blocks) + 1
        self._blocks.append(block)

    # --- updates ------------------------------------------------------------

    def update(self, when: float, values: Any) -> None:
        """One reading per active column at `when` (seconds, may be fractional).
        `values`: a sequence/array in `columns` order (NaN or None = unknown) or
        a mapping name → value (missing names are unknown). COUNTER and DERIVE
        readings are integers; pass an integer array for values above 2**53."""
        if isinstance(values, Mapping):
            values = self._vector_from_mapping(values)
        array = _as_2d(values)
        self.update_many([when], array)

    def update_many(self, times: Sequence[float], values: Any) -> None:
        """Several updates at increasing times in one atomic call:
        `values` has one row per time and one column per active column."""
        with self._locked(True):
            batch = self._batch_from_numbers(times, values)
            self._apply(batch)

    def apply_batch(self, batch: Batch) -> None:
        """Apply readings already split into magnitudes/signs (the compat layer)."""
        with self._locked(True):
            self._apply(batch)

    def _vector_from_mapping(self, values: Mapping[str, Any]) -> npt.NDArray[Any]:
        names = self.columns
        unknown = [n for n in values if n not in set(names)]
        if unknown:
            raise NotFound("column", unknown[0])
        return np.array([_none_to_nan(values.get(n)) for n in names], dtype=object)

    def _times(self, times: Sequence[float]) -> tuple[list[int], list[int]]:
        seconds: list[int] = []
        usecs: list[int] = []
        for raw in times:
            try:
                when = float(raw)
            except (TypeError, ValueError):
                raise InvalidInput(f"time {raw!r} is not a number", source=self.path) from None
            if not math.isfinite(when):
                raise InvalidInput(f"time {raw!r} is not finite", source=self.path)
            second = math.floor(when)
            seconds.append(second)
            usecs.append(int((when - second) * 1e6))
        self._check_times(seconds, usecs)
        return seconds, usecs

    def _check_times(self, seconds: Sequence[int], usecs: Sequence[int]) -> None:
        """Each time must come after the previous one and the last update."""
        live = self._live()
        last = (int(self._h[live + _L_LAST_UP]), int(self._h[live + _L_LAST_USEC]))
        for second, usec in zip(seconds, usecs, strict=True):
            if (second, usec) <= last:
                raise InvalidInput(
                    f"illegal attempt to update using time {second + usec / 1e6:.6f} when "
                    f"last update time is {last[0] + last[1] / 1e6:.6f} (times must increase)",
                    source=self.path,
                    field="time",
                )
            last = (second, usec)

    def _batch_from_numbers(self, times: Sequence[float], values: Any) -> Batch:
        seconds, usecs = self._times(times)
        array = _as_2d(values)
        count = len(self._names)
        if array.shape != (len(seconds), count):
            raise InvalidInput(
                f"expected {len(seconds)} row(s) of {count} values (one per column), "
                f"got shape {array.shape}",
                source=self.path,
            )
        kinds = self._kinds
        counters = self._counters
        any_counters = self._any_counters
        magnitude: npt.NDArray[np.uint64] | None = None
        negative: npt.NDArray[np.bool_] | None = None
        if array.dtype.kind in "iu":
            value = array.astype(np.float64)
            unknown = np.zeros(array.shape, dtype=bool)
            if any_counters:
                if array.dtype.kind == "u":
                    magnitude = array.astype(np.uint64)
                    negative = np.zeros(array.shape, dtype=bool)
                else:
                    signed = array.astype(np.int64)
                    negative = signed < 0
                    # -(x+1)+1 keeps the most negative int64 in range
                    magnitude = np.where(
                        negative,
                        (-(signed + 1)).astype(np.uint64) + np.uint64(1),
                        signed.astype(np.uint64),
                    )
        elif array.dtype == object:
            value, unknown, magnitude, negative = _from_objects(array, counters)
        else:
            try:
                value = array.astype(np.float64)
            except (TypeError, ValueError):
                raise InvalidInput("values must be numbers", source=self.path) from None
            unknown = np.isnan(value)
            if any_counters:
                magnitude, negative = _float_counters(value, unknown, counters)
        if any_counters:
            self._check_counters(value, unknown, negative, kinds, counters)
        return Batch(seconds, usecs, value, unknown, magnitude, negative)

    def _check_counters(
        self,
        value: F64,
        unknown: npt.NDArray[np.bool_],
        negative: npt.NDArray[np.bool_] | None,
        kinds: npt.NDArray[np.int64],
        counters: npt.NDArray[np.bool_],
    ) -> None:
        with np.errstate(invalid="ignore"):
            # NaN (unknown) and inf compare oddly; both are masked or caught below
            fractional = (value != np.floor(value)) | ~np.isfinite(value)
            if fractional.any():
                fractional &= counters & ~unknown
        if fractional.any():
            row, col = np.argwhere(fractional)[0]
            raise InvalidInput(
                f"{value[row, col]!r} is not a finite integer reading for a "
                f"{SourceType(int(kinds[col])).name} column",
                source=self.path,
                field=self._names[col],
            )
        if negative is not None and negative.any():
            bad = negative & ~unknown & (kinds == SourceType.COUNTER)
            if bad.any():
                row, col = np.argwhere(bad)[0]
                raise InvalidInput(
                    f"{value[row, col]!r}: a COUNTER reading cannot be negative",
                    source=self.path,
                    field=self._names[col],
                )

    def _apply(self, batch: Batch) -> None:
        journal = self._require_writable()
        seconds, usecs = list(batch.seconds), list(batch.usecs)
        self._check_times(seconds, usecs)
        if batch.value.shape[1] != len(self._names):
            raise InvalidInput(
                f"expected {len(self._names)} values per update, got {batch.value.shape[1]}",
                source=self.path,
            )
        h = self._h
        selector = self._selector()
        live, spare = _LIVE_AT[selector], _LIVE_AT[1 - selector]
        last_up, last_usec = int(h[live + _L_LAST_UP]), int(h[live + _L_LAST_USEC])
        ticks: list[Tick] = []
        for second, usec in zip(seconds, usecs, strict=True):
            ticks.append(self._engine.plan(last_up, last_usec, second, usec))
            last_up, last_usec = second, usec
        written = [0] * len(self.archives)
        for tick in ticks:
            for i, n in enumerate(tick.rows_written(len(self.archives))):
                written[i] += n
        cur_rows = self._cur_rows()
        undo = self._undo_segments(written, cur_rows)
        if undo:
            journal.save(undo, selector)
        per_block = [self._split(block, b, batch) for b, block in enumerate(self._blocks)]
        for block in self._blocks:
            np.copyto(block.raw_states[1 - selector], block.raw_states[selector])
        sizes = [a.rows + 1 for a in self.archives]
        for t, tick in enumerate(ticks):
            for block, readings in zip(self._blocks, per_block, strict=True):
                row = Readings(
                    readings.unknown[t],
                    readings.value[t],
                    readings.magnitude[t],
                    readings.negative[t],
                )
                self._engine.apply(
                    tick, block.params, block.states[1 - selector], block.rings, cur_rows, row
                )
            advanced = tick.rows_written(len(sizes))
            cur_rows = [
                (c + n) % size for c, n, size in zip(cur_rows, advanced, sizes, strict=True)
            ]
        h[spare + _L_CUR_ROW : spare + _L_CUR_ROW + len(cur_rows)] = cur_rows
        h[spare + _L_LAST_UP] = seconds[-1]
        h[spare + _L_LAST_USEC] = usecs[-1]
        h[spare + _L_GENERATION] = h[live + _L_GENERATION] + 1
        if journal.durable:
            self._sync()
        # the commit: one aligned 8-byte store makes the new state and rows live
        h[_H_SELECTOR] = 1 - selector
        if journal.durable:
            self._hmm.flush()
        if undo:
            journal.discard()

    def _sync(self) -> None:
        self._hmm.flush()
        for block in self._blocks:
            block.mm.flush()

    def _undo_segments(
        self, written: Sequence[int], cur_rows: Sequence[int]
    ) -> list[tuple[int, Bytes]]:
        """The ring rows an update overwrites that the live copy still shows: all
        but the first of each archive's new rows (the first goes to the spare)."""
        segments: list[tuple[int, Bytes]] = []
        for block in self._blocks:
            # views, not copies: the journal write copies them before anything changes
            mm = memoryview(block.mm)
            row_bytes = block.capacity * 8
            for archive, at, cur, n in zip(
                self.archives, block.rings_at, cur_rows, written, strict=True
            ):
                size = archive.rows + 1
                visible = min(n, size) - 1
                if visible <= 0:
                    continue
                first = (cur + 2) % size
                runs = [(first, min(visible, size - first))]
                if visible > size - first:
                    runs.append((0, visible - (size - first)))
                for row, count in runs:
                    lo = at + row * row_bytes
                    segments.append((block.offset + lo, mm[lo : lo + count * row_bytes]))
        return segments

    def _split(self, block: _Block, b: int, batch: Batch) -> Readings:
        """The batch's columns of one block, at full block width (T, capacity)."""
        positions = self._block_positions[b]
        shape = (len(batch.seconds), block.capacity)
        if block.dense:
            lo = int(positions[0]) if len(positions) else 0
            cols = slice(lo, lo + block.capacity)
            value = batch.value[:, cols]
            unknown = batch.unknown[:, cols]
            magnitude = batch.magnitude[:, cols] if batch.magnitude is not None else None
            negative = batch.negative[:, cols] if batch.negative is not None else None
        else:
            slots = block.active_slots
            value = np.full(shape, math.nan)
            value[:, slots] = batch.value[:, positions]
            unknown = np.ones(shape, dtype=bool)
            unknown[:, slots] = batch.unknown[:, positions]
            magnitude = negative = None
            if batch.magnitude is not None and batch.negative is not None:
                magnitude = np.zeros(shape, dtype=np.uint64)
                magnitude[:, slots] = batch.magnitude[:, positions]
                negative = np.zeros(shape, dtype=bool)
                negative[:, slots] = batch.negative[:, positions]
        if magnitude is None or negative is None:
            magnitude = np.zeros(shape, dtype=np.uint64)
            negative = np.zeros(shape, dtype=bool)
        return Readings(unknown, value, magnitude, negative)

    # --- reads --------------------------------------------------------------

    def fetch(
        self,
        cf: str | Consolidation,
        start: int,
        end: int,
        resolution: int = 1,
        columns: Sequence[str] | None = None,
    ) -> Fetched:
        """rrdtool fetch: archive chosen by start coverage then resolution; rows
        at aligned start+step … end (an aligned end still moves one step)."""
        consolidation = cf if isinstance(cf, Consolidation) else parse_cf(cf)
        with self._locked(False):
            last_up = self._last_up()
            plan = plan_fetch(
                self.archives,
                self.step,
                last_up,
                consolidation,
                int(start),
                int(end),
                int(resolution),
            )
            return self._read(plan, last_up, columns)

    def read_plan(self, plan: FetchPlan, columns: Sequence[str] | None = None) -> Fetched:
        """Rows of a fetch already planned (several files read on one time grid)."""
        if not 0 <= plan.archive < len(self.archives):
            raise InvalidInput(f"archive {plan.archive} does not exist", source=self.path)
        with self._locked(False):
            return self._read(plan, self._last_up(), columns)

    def _read(self, plan: FetchPlan, last_up: int, columns: Sequence[str] | None) -> Fetched:
        names = list(self._names) if columns is None else list(columns)
        cells = {n: self._where.get(n) or self._retired_where.get(n) for n in names}
        missing = [n for n, cell in cells.items() if cell is None]
        if missing:
            raise NotFound("column", missing[0])
        archive = self.archives[plan.archive]
        cur_row = self._cur_rows()[plan.archive]
        first, slots = row_slots(archive, self.step, last_up, cur_row, plan)
        out = np.empty((plan.rows, len(names)))
        out[:first] = math.nan
        out[first + len(slots) :] = math.nan
        if len(slots):
            rows = slice(first, first + len(slots))
            if columns is None and len(self._blocks) == 1 and self._blocks[0].dense:
                # one copy straight from the ring into the result
                np.take(self._blocks[0].rings[plan.archive], slots, axis=0, out=out[rows])
            elif columns is None:
                position = 0
                for block in self._blocks:
                    count = len(block.active_slots)
                    if count == 0:
                        continue
                    ring = block.rings[plan.archive]
                    part = ring[slots] if block.dense else ring[slots][:, block.active_slots]
                    out[rows, position : position + count] = part
                    position += count
            else:
                for j, name in enumerate(names):
                    cell = cells[name]
                    assert cell is not None
                    b, slot = cell
                    out[rows, j] = self._blocks[b].rings[plan.archive][slots, slot]
        return Fetched(plan.start, plan.end, plan.step, tuple(names), out, plan.archive)

    def stored_rows(
        self, archive: int, columns: Sequence[str] | None = None
    ) -> tuple[npt.NDArray[np.int64], F64]:
        """Every row an archive holds, oldest first, with its timestamp (what
        `rrdtool dump` shows)."""
        if not 0 <= archive < len(self.archives):
            raise InvalidInput(
                f"archive {archive} does not exist (this file has {len(self.archives)})",
                source=self.path,
                field="archive",
            )
        with self._locked(False):
            spec = self.archives[archive]
            last_up = self._last_up()
            rra_step = self.step * spec.steps
            rra_end = last_up - last_up % rra_step
            plan = FetchPlan(archive, rra_end - rra_step * spec.rows, rra_end, rra_step)
            fetched = self._read(plan, last_up, columns)
            return fetched.timestamps, fetched.values

    def latest(
        self, cf: str | Consolidation = Consolidation.AVERAGE
    ) -> tuple[int, dict[str, float]]:
        """The most recent row of the finest archive of `cf`: (its time, values)."""
        consolidation = cf if isinstance(cf, Consolidation) else parse_cf(cf)
        with self._locked(False):
            last_up = self._last_up()
            plan = plan_fetch(
                self.archives,
                self.step,
                last_up,
                consolidation,
                last_up - self.step,
                last_up - self.step,
                1,
            )
            fetched = self._read(plan, last_up, None)
            row = (
                fetched.values[0] if len(fetched.values) else np.full(len(fetched.names), math.nan)
            )
            return int(fetched.timestamps[0]), dict(zip(fetched.names, row.tolist(), strict=True))

    def info(self) -> dict[str, Any]:
        """rrdtool info's keys (NaN as None, as the Python binding gives them)."""
        with self._locked(False):
            out: dict[str, Any] = {
                "filename": self.path,
                "rrd_version": "0003",
                "step": self.step,
                "last_update": self._last_up(),
                "header_size": HEADER_SIZE,
            }
            cells = [self._where[n] for n in self._names]
            copy = self._selector()
            cur_rows = self._cur_rows()
            for index, (name, (b, slot)) in enumerate(zip(self._names, cells, strict=True)):
                block = self._blocks[b]
                source = self._source(name)
                prefix = f"ds[{name}]"
                out[f"{prefix}.index"] = index
                out[f"{prefix}.type"] = source.type.name
                out[f"{prefix}.minimal_heartbeat"] = source.heartbeat
                out[f"{prefix}.min"] = _nan_none(source.min)
                out[f"{prefix}.max"] = _nan_none(source.max)
                state = block.states[copy]
                out[f"{prefix}.last_ds"] = _last_ds(state, slot, source.type)
                out[f"{prefix}.value"] = _nan_none(float(state.pdp_val[slot]))
                out[f"{prefix}.unknown_sec"] = int(state.unknown_sec[slot])
            for r, archive in enumerate(self.archives):
                prefix = f"rra[{r}]"
                out[f"{prefix}.cf"] = archive.cf.name
                out[f"{prefix}.rows"] = archive.rows
                out[f"{prefix}.cur_row"] = cur_rows[r]
                out[f"{prefix}.pdp_per_row"] = archive.steps
                out[f"{prefix}.xff"] = archive.xff
                for index, (b, slot) in enumerate(cells):
                    state = self._blocks[b].states[copy]
                    out[f"{prefix}.cdp_prep[{index}].value"] = _nan_none(
                        float(state.cdp_val[r][slot])
                    )
                    out[f"{prefix}.cdp_prep[{index}].unknown_datapoints"] = int(
                        state.cdp_unknown[r][slot]
                    )
            return out


# --- helpers ------------------------------------------------------------------


def _recover(path: str, fd: int, writable: bool) -> None:
    """Undo an update a killed writer left half done (under the write lock, so a
    live writer finishes first)."""
    journal = journal_path(path)
    if not os.path.exists(journal):
        return
    write_fd = fd if writable else os.open(path, os.O_RDWR)
    try:
        fcntl.flock(write_fd, fcntl.LOCK_EX)
        try:
            undo = UndoJournal(path)
            try:
                selector = struct.unpack("<q", os.pread(write_fd, 8, _H_SELECTOR * 8))[0]
                undo.restore(write_fd, selector)
            finally:
                undo.close()
        finally:
            fcntl.flock(write_fd, fcntl.LOCK_UN)
    except PermissionError:
        raise InvalidInput(
            "an interrupted update needs undoing but the file is not writable", source=path
        ) from None
    finally:
        if write_fd != fd:
            os.close(write_fd)


def _check_sources(sources: Sequence[DataSource], path: str) -> None:
    names = [s.name for s in sources]
    for source in sources:
        validate_column_name(source.name)
        if source.heartbeat < 1:
            raise InvalidInput(f"heartbeat of {source.name!r} must be positive", source=path)
    duplicates = sorted(n for n, seen in Counter(names).items() if seen > 1)
    if duplicates:
        raise InvalidInput(f"duplicate column name {duplicates[0]!r}", source=path)


def _reset_slot(
    state: ColumnState, slot: int | slice, unknown_sec: int, unknown_pdps: Sequence[int]
) -> None:
    state.last_value[slot] = math.nan
    state.last_mag[slot] = 0
    state.last_sign[slot] = 0
    state.pdp_val[slot] = math.nan
    state.unknown_sec[slot] = unknown_sec
    for r, count in enumerate(unknown_pdps):
        state.cdp_val[r][slot] = math.nan
        state.cdp_unknown[r][slot] = count


def _as_2d(values: Any) -> npt.NDArray[Any]:
    if isinstance(values, np.ndarray):
        array = values
    else:
        items = list(values)
        if any(v is None for v in _flat(items)):
            array = np.array(items, dtype=object)
        else:
            try:
                array = np.asarray(items)
            except (TypeError, ValueError, OverflowError):
                array = np.array(items, dtype=object)
    if array.ndim == 1:
        array = array[np.newaxis, :]
    if array.dtype.kind not in "iufbO":
        raise InvalidInput(f"values must be numbers, got {array.dtype}")
    return array


def _flat(items: list[Any]) -> Iterator[Any]:
    for item in items:
        if isinstance(item, list | tuple):
            yield from item
        else:
            yield item


def _none_to_nan(value: Any) -> Any:
    return math.nan if value is None else value


def _from_objects(
    array: npt.NDArray[Any], counters: npt.NDArray[np.bool_]
) -> tuple[F64, npt.NDArray[np.bool_], npt.NDArray[np.uint64], npt.NDArray[np.bool_]]:
    """Mixed Python values (None for unknown, ints kept exact for counters)."""
    shape = array.shape
    value = np.empty(shape)
    unknown = np.zeros(shape, dtype=bool)
    magnitude = np.zeros(shape, dtype=np.uint64)
    negative = np.zeros(shape, dtype=bool)
    for (row, col), item in np.ndenumerate(array):
        if item is None or (isinstance(item, float) and math.isnan(item)):
            value[row, col] = math.nan
            unknown[row, col] = True
            continue
        if isinstance(item, bool) or not isinstance(item, int | float | np.integer | np.floating):
            raise InvalidInput(f"value {item!r} is not a number", field=f"column {col}")
        value[row, col] = float(item)
        if counters[col]:
            if isinstance(item, float | np.floating) and not float(item).is_integer():
                continue  # reported by the integer check
            exact = int(item)
            if abs(exact) >= 2**64:
                raise InvalidInput(f"counter reading {item!r} does not fit in 64 bits")
            magnitude[row, col] = abs(exact)
            negative[row, col] = exact < 0
    return value, unknown, magnitude, negative


def _float_counters(
    value: F64, unknown: npt.NDArray[np.bool_], counters: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_]]:
    with np.errstate(invalid="ignore"):
        absolute = np.where(unknown | ~counters | ~np.isfinite(value), 0.0, np.abs(value))
        if np.any(absolute >= 2.0**64):
            raise InvalidInput("a counter reading does not fit in 64 bits")
        return absolute.astype(np.uint64), value < 0


def _nan_none(value: float) -> float | None:
    return None if math.isnan(value) else value


def _last_ds(state: ColumnState, slot: int, kind: SourceType) -> str:
    if kind in (SourceType.COUNTER, SourceType.DERIVE):
        sign = int(state.last_sign[slot])
        if sign == 0:
            return "U"
        magnitude = int(state.last_mag[slot])
        return f"-{magnitude}" if sign < 0 else str(magnitude)
    value = float(state.last_value[slot])
    if math.isnan(value):
        return "U"
    return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
