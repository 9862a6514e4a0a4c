"""Hosts kept sorted by a key (free RAM for best fit, utilisation for balancing)
so a strategy finds the tightest or the emptiest host in log time at 10,000 hosts."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator


class HostIndex:
    def __init__(self, hosts: Iterable[str], key: Callable[[str], float]) -> None:
        self._key = key
        self._keys: dict[str, float] = {h: key(h) for h in hosts}
        self._sorted: list[tuple[float, str]] = sorted((k, h) for h, k in self._keys.items())

    def __contains__(self, host: object) -> bool:
        return host in self._keys

    def __len__(self) -> int:
        return len(self._sorted)

    def add(self, host: str) -> None:
        if host in self._keys:
            return
        key = self._key(host)
        self._keys[host] = key
        bisect.insort(self._sorted, (key, host))

    def remove(self, host: str) -> None:
        key = self._keys.pop(host, None)
        if key is None:
            return
        index = bisect.bisect_left(self._sorted, (key, host))
        del self._sorted[index]

    def refresh(self, host: str) -> None:
        """Re-read the key of `host` (after a placement changed it)."""
        if host in self._keys:
            self.remove(host)
            self.add(host)

    def at_least(self, value: float) -> Iterator[str]:
        """Hosts whose key is >= value, smallest key first (the tightest fit)."""
        start = bisect.bisect_left(self._sorted, (value, ""))
        for index in range(start, len(self._sorted)):
            yield self._sorted[index][1]

    def ascending(self) -> Iterator[str]:
        for _, host in list(self._sorted):
            yield host

    def descending(self) -> Iterator[str]:
        for _, host in reversed(list(self._sorted)):
            yield host

    def key(self, host: str) -> float:
        return self._keys[host]

    def lowest(self, count: int) -> list[str]:
        return [host for _, host in self._sorted[:count]]

    def highest(self, count: int) -> list[str]:
        return [host for _, host in reversed(self._sorted[-count:])] if count > 0 else []
