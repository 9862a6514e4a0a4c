"""Routing transitions to notifiers: the router decides what is announced and
in which batches; each notifier gets every batch, and one that fails is logged
and counted while the others, and the loop, carry on."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from opendrs.cep.engine import Delivery
from opendrs.cep.routing import Batch, NotificationRouter
from opendrs.domain.alarm import AlarmTransition
from opendrs.domain.clock import Clock

log = logging.getLogger(__name__)


class Notifier(Protocol):
    name: str

    def send(self, batch: Batch) -> None: ...


class Dispatcher:
    """`webhook` builds the notifier of a rule's own webhook action (by URL)."""

    def __init__(
        self,
        router: NotificationRouter,
        notifiers: Sequence[Notifier],
        clock: Clock,
        webhook: Callable[[str], Notifier] | None = None,
    ) -> None:
        self.router = router
        self._notifiers = list(notifiers)
        self._clock = clock
        self._webhook = webhook
        self._rule_hooks: dict[str, Notifier] = {}
        self.sent: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()

    def dispatch(
        self, transitions: Iterable[AlarmTransition], deliveries: Iterable[Delivery] = ()
    ) -> list[Batch]:
        """Route and send; returns the batches that were due (sent or failed)."""
        batches = self.router.route(transitions, self._clock.now())
        for notifier in self._notifiers:
            for batch in batches:
                self._send(notifier, batch)
        routed = {t.dedup_key for batch in batches for t in batch.notifications}
        by_url: dict[str, list[AlarmTransition]] = {}
        for delivery in deliveries:
            if delivery.transition.dedup_key in routed:
                by_url.setdefault(delivery.url, []).append(delivery.transition)
        for url, items in by_url.items():
            hook = self._rule_hook(url)
            if hook is not None:
                self._send(hook, Batch((("webhook", url),), tuple(items)))
        return batches

    def _rule_hook(self, url: str) -> Notifier | None:
        if self._webhook is None:
            return None
        hook = self._rule_hooks.get(url)
        if hook is None:
            hook = self._rule_hooks[url] = self._webhook(url)
        return hook

    def _send(self, notifier: Notifier, batch: Batch) -> None:
        try:
            notifier.send(batch)
        except Exception:
            self.failed[notifier.name] += 1
            log.exception(
                "notifier %s failed on a batch of %d (%s); carrying on",
                notifier.name,
                len(batch.notifications),
                batch.dedup_key,
            )
        else:
            self.sent[notifier.name] += 1
