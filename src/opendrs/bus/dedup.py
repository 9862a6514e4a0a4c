"""The bounded memory of message ids a consumer has already seen, so that
at-least-once delivery is consumed once (idempotent consumers)."""

from __future__ import annotations

from collections import OrderedDict


class RecentIds:
    """The last `capacity` ids seen; older ones are forgotten first.

    A redelivery older than the window is delivered again, which is why
    handlers must still be tolerant of a rare duplicate.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 1:
            raise ValueError(f"the dedup window must hold at least 1 id, got {capacity}")
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def seen(self, message_id: str) -> bool:
        """True if the id was already seen; otherwise remember it and say False."""
        if message_id in self._ids:
            self._ids.move_to_end(message_id)
            return True
        self._ids[message_id] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return False

    def __len__(self) -> int:
        return len(self._ids)
