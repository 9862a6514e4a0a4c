"""Numbers as line-protocol text (statsd, Graphite), a whole poll at once: a
whole number as an integer, any other value as the shortest text that reads
back as the very same float; orjson writes each kind over its array in one call."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import orjson

_NUMPY = orjson.OPT_SERIALIZE_NUMPY
_EXACT = 2.0**53  # below it, every whole float is exactly an integer


def number_texts(values: npt.NDArray[np.float64]) -> list[bytes]:
    """The text of every value, in order. Only for finite values: neither protocol
    has a text for NaN or an infinity, the caller leaves those out."""
    whole = (values == np.floor(values)) & (np.abs(values) < _EXACT)
    if whole.all():
        return _texts(values.astype(np.int64))  # -0.0 as 0 too
    if not whole.any():
        return _texts(values)
    out = np.empty(len(values), dtype=object)
    out[whole] = _texts(values[whole].astype(np.int64))
    out[~whole] = _texts(values[~whole])
    texts: list[bytes] = out.tolist()
    return texts


def _texts(values: npt.NDArray[np.float64] | npt.NDArray[np.int64]) -> list[bytes]:
    if not len(values):
        return []
    return orjson.dumps(values, option=_NUMPY)[1:-1].split(b",")


def number_text(value: float) -> bytes:
    """The text of one finite value, as `number_texts` writes it."""
    if value == int(value) and abs(value) < _EXACT:
        return orjson.dumps(int(value))
    return orjson.dumps(float(value))


def joints(heads: Sequence[bytes], tails: Sequence[bytes]) -> list[bytes]:
    """What lies between the numbers of lines `head number tail`, all sent: the
    first head, then each tail joined to the next line's head (`interleaved`
    takes them, and the last tail as its end)."""
    return [*heads[:1], *map(bytes.__add__, tails[:-1], heads[1:])]


def interleaved(joints: Sequence[bytes], numbers: Sequence[bytes], end: bytes) -> bytes:
    """joints[0] numbers[0] joints[1] numbers[1] ... numbers[-1] end: lines whose
    fixed parts (a line's end and the next line's start) lie between the numbers."""
    pieces: list[bytes] = [end] * (2 * len(numbers) + 1)
    pieces[0:-1:2] = joints
    pieces[1::2] = numbers
    return b"".join(pieces)


def framed(heads: Sequence[bytes], numbers: Sequence[bytes], tails: Sequence[bytes]) -> bytes:
    """heads[i] numbers[i] tails[i] for every i, joined."""
    pieces: list[bytes] = [b""] * (3 * len(numbers))
    pieces[0::3] = heads
    pieces[1::3] = numbers
    pieces[2::3] = tails
    return b"".join(pieces)
