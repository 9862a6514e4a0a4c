"""The undo journal of a round-robin file: bytes the live state still shows and
a change must overwrite are saved in a side file and marked committed before the
file is touched, and dropped after. A record carries the header selector it was
saved under: if a writer died before flipping the selector, opening the file puts
the bytes back; if it died after (the change is complete), the record is dropped."""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence

MAGIC = b"ODRSJNL1"
_HEADER = struct.Struct("<8sqqqq")  # magic, committed, segments, payload bytes, tag
_SEGMENT = struct.Struct("<qq")  # file offset, length
_COMMITTED_AT = 8

Bytes = bytes | bytearray | memoryview


def journal_path(archive_path: str) -> str:
    return archive_path + ".journal"


def _write_all(fd: int, buffers: Sequence[Bytes], offset: int) -> None:
    views = [memoryview(b).cast("B") for b in buffers]
    while views:
        written = os.pwritev(fd, views[:512], offset)
        offset += written
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if written:
            views[0] = views[0][written:]


class UndoJournal:
    """One archive's journal file, kept open while the archive is."""

    def __init__(self, archive_path: str, *, durable: bool = False) -> None:
        self.path = journal_path(archive_path)
        self.durable = durable
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def save(self, segments: Sequence[tuple[int, Bytes]], tag: int) -> None:
        """Record the current content of the given archive byte ranges and mark
        the record committed; only then may the caller change them."""
        table = b"".join(_SEGMENT.pack(off, memoryview(data).nbytes) for off, data in segments)
        payload = sum(memoryview(data).nbytes for _, data in segments)
        header = _HEADER.pack(MAGIC, 0, len(segments), payload, tag)
        _write_all(self._fd, [header, table, *(data for _, data in segments)], 0)
        if self.durable:
            os.fsync(self._fd)
        # the commit mark is one aligned 8-byte write: either there or not
        os.pwrite(self._fd, struct.pack("<q", 1), _COMMITTED_AT)
        if self.durable:
            os.fsync(self._fd)

    def discard(self) -> None:
        """The update is fully in the archive: forget the saved bytes."""
        os.pwrite(self._fd, struct.pack("<q", 0), _COMMITTED_AT)

    def pending(self) -> tuple[int, list[tuple[int, bytes]]] | None:
        """The tag and saved bytes of an interrupted change, or None."""
        head = os.pread(self._fd, _HEADER.size, 0)
        if len(head) < _HEADER.size:
            return None
        magic, committed, count, payload, tag = _HEADER.unpack(head)
        if magic != MAGIC or committed != 1:
            return None
        table = os.pread(self._fd, count * _SEGMENT.size, _HEADER.size)
        data = os.pread(self._fd, payload, _HEADER.size + count * _SEGMENT.size)
        segments: list[tuple[int, bytes]] = []
        position = 0
        for i in range(count):
            offset, length = _SEGMENT.unpack_from(table, i * _SEGMENT.size)
            segments.append((offset, data[position : position + length]))
            position += length
        return tag, segments

    def restore(self, archive_fd: int, selector: int) -> bool:
        """Undo an interrupted change saved under `selector` (the one the file
        still has); True if bytes were put back."""
        record = self.pending()
        if record is None:
            return False
        tag, segments = record
        if tag != selector:
            self.discard()
            return False
        for offset, data in segments:
            os.pwrite(archive_fd, data, offset)
        if self.durable:
            os.fsync(archive_fd)
        self.discard()
        return True
