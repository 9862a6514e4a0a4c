"""Bounded first-in first-out queues of encoded bus messages, kept while the bus
is unreachable: on disk (survives a restart of the agent) or in memory. Past the
bound the oldest messages are dropped, and counted."""

from __future__ import annotations

import logging
import os
import struct
from collections import deque
from pathlib import Path
from typing import Protocol

from opendrs.domain.errors import InvalidInput

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">I")
_LOG = "queue.log"
_HEAD = "queue.head"
_COMPACT_AT = 1024 * 1024  # bytes of consumed records before the file is rewritten


class Spool(Protocol):
    """Messages (subject, payload) in the order they were put."""

    dropped: int

    def __len__(self) -> int: ...

    def put(self, subject: str, payload: bytes) -> None:
        """Append; drop (and count) the oldest messages past the bound."""
        ...

    def peek(self) -> tuple[str, bytes] | None:
        """The oldest message, still queued."""
        ...

    def pop(self) -> None:
        """Remove the oldest message (after it was delivered)."""
        ...

    def commit(self) -> None:
        """Make the removals so far durable (a crash before replays them again)."""
        ...


def _check_bounds(max_events: int, max_bytes: int) -> None:
    if max_events < 1 or max_bytes < 1:
        raise InvalidInput(
            f"bounds must be positive (max_events={max_events}, max_bytes={max_bytes})",
            source="publisher buffer",
        )


class MemorySpool:
    """The spool without a disk: bounded the same way, lost with the process."""

    def __init__(self, *, max_events: int = 100_000, max_bytes: int = 256 * 1024 * 1024) -> None:
        _check_bounds(max_events, max_bytes)
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._items: deque[tuple[str, bytes]] = deque()
        self._bytes = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, subject: str, payload: bytes) -> None:
        self._items.append((subject, payload))
        self._bytes += len(payload)
        while len(self._items) > self.max_events or (
            self._bytes > self.max_bytes and len(self._items) > 1
        ):
            _, old = self._items.popleft()
            self._bytes -= len(old)
            self.dropped += 1

    def peek(self) -> tuple[str, bytes] | None:
        return self._items[0] if self._items else None

    def pop(self) -> None:
        _, payload = self._items.popleft()
        self._bytes -= len(payload)

    def commit(self) -> None:
        return None


class DiskSpool:
    """An append-only file of length-prefixed records and a small file holding
    the offset of the first record not yet delivered (replaced atomically).

    Records are written through to the operating system at each `put`; a record
    cut short by a crash is discarded when the spool is opened again. Delivery
    is at least once: what was sent but not committed is sent again after a
    crash (the bus deduplicates by event id).
    """

    def __init__(
        self,
        directory: Path,
        *,
        max_events: int = 100_000,
        max_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        _check_bounds(max_events, max_bytes)
        self.directory = directory
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.dropped = 0
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidInput(
                f"cannot create the buffer directory: {exc.strerror}",
                source=str(directory),
                field="agent.publisher.buffer_dir",
            ) from exc
        self._log_path = directory / _LOG
        self._head_path = directory / _HEAD
        # (offset, size of the whole record, payload size) of every queued record
        self._index: deque[tuple[int, int, int]] = deque()
        self._bytes = 0
        self._head = self._read_head()
        end = self._scan()
        self._file = open(self._log_path, "r+b" if self._log_path.exists() else "w+b")  # noqa: SIM115
        self._file.truncate(end)  # a record cut short by a crash
        self._file.seek(end)
        self._end = end
        self._bound()

    def __len__(self) -> int:
        return len(self._index)

    def put(self, subject: str, payload: bytes) -> None:
        body = subject.encode() + b"\n" + payload
        record = _HEADER.pack(len(body)) + body
        self._file.seek(self._end)
        self._file.write(record)
        self._file.flush()
        self._index.append((self._end, len(record), len(payload)))
        self._end += len(record)
        self._bytes += len(payload)
        self._bound()

    def peek(self) -> tuple[str, bytes] | None:
        if not self._index:
            return None
        offset, size, _ = self._index[0]
        self._file.seek(offset + _HEADER.size)
        body = self._file.read(size - _HEADER.size)
        subject, _, payload = body.partition(b"\n")
        return subject.decode(), payload

    def pop(self) -> None:
        offset, size, payload_size = self._index.popleft()
        self._head = offset + size
        self._bytes -= payload_size

    def commit(self) -> None:
        if not self._index and self._end > 0:
            self._reset()
            return
        if self._head >= _COMPACT_AT and self._head * 2 >= self._end:
            self._compact()
        self._write_head()

    def close(self) -> None:
        self.commit()
        self._file.close()

    # --- internals ---------------------------------------------------------

    def _bound(self) -> None:
        dropped = 0
        while len(self._index) > self.max_events or (
            self._bytes > self.max_bytes and len(self._index) > 1
        ):
            self.pop()
            dropped += 1
        if dropped:
            self.dropped += dropped
            self._write_head()

    def _read_head(self) -> int:
        try:
            return int(self._head_path.read_text().strip() or 0)
        except FileNotFoundError:
            return 0
        except (OSError, ValueError):
            log.warning("unreadable %s: replaying the whole buffer", self._head_path)
            return 0

    def _write_head(self) -> None:
        tmp = self._head_path.with_suffix(".tmp")
        tmp.write_text(str(self._head))
        os.replace(tmp, self._head_path)

    def _scan(self) -> int:
        """Index the records from the head; returns where the last whole one ends."""
        if not self._log_path.exists():
            self._head = 0
            return 0
        data = self._log_path.read_bytes()
        offset = self._head if 0 <= self._head <= len(data) else 0
        while offset + _HEADER.size <= len(data):
            (length,) = _HEADER.unpack_from(data, offset)
            end = offset + _HEADER.size + length
            if end > len(data):
                break
            start = offset + _HEADER.size
            subject_size = data.index(b"\n", start, end) - start
            payload = length - subject_size - 1
            self._index.append((offset, end - offset, payload))
            self._bytes += payload
            offset = end
        return offset

    def _compact(self) -> None:
        """Rewrite the queued records at the start of a new file."""
        tmp_path = self._log_path.with_suffix(".tmp")
        index: deque[tuple[int, int, int]] = deque()
        with open(tmp_path, "wb") as out:
            position = 0
            for offset, size, payload in self._index:
                self._file.seek(offset)
                out.write(self._file.read(size))
                index.append((position, size, payload))
                position += size
        self._file.close()
        os.replace(tmp_path, self._log_path)
        self._file = open(self._log_path, "r+b")  # noqa: SIM115
        self._index = index
        self._end = position
        self._head = 0
        self._file.seek(self._end)

    def _reset(self) -> None:
        self._file.seek(0)
        self._file.truncate(0)
        self._end = 0
        self._head = 0
        self._write_head()
