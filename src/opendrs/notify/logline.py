"""A notifier that writes one log line per notification."""

from __future__ import annotations

import logging

from opendrs.cep.routing import Batch

_log = logging.getLogger("opendrs.alarms")


class LogNotifier:
    name = "log"

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or _log

    def send(self, batch: Batch) -> None:
        for t in batch.notifications:
            self._log.warning(
                "alarm %s on %s: %s -> %s (%s) [%s]",
                t.rule,
                t.entity,
                t.previous.value,
                t.current.value,
                t.reason,
                t.dedup_key,
            )
