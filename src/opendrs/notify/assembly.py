"""Building the dispatcher the configuration asks for: which notifiers, how
notifications are grouped, limited and inhibited."""

from __future__ import annotations

from opendrs.cep.routing import Inhibition, NotificationRouter, RoutingPolicy
from opendrs.config import NotifySettings
from opendrs.domain.clock import Clock
from opendrs.domain.ports import Bus
from opendrs.notify.alertmanager import AlertmanagerNotifier, WebhookNotifier
from opendrs.notify.busevent import BusNotifier
from opendrs.notify.dispatcher import Dispatcher, Notifier
from opendrs.notify.logline import LogNotifier


def routing_policy(settings: NotifySettings) -> RoutingPolicy:
    return RoutingPolicy(
        group_by=tuple(settings.group_by),
        max_per_group=settings.max_per_group,
        per=settings.rate_period_seconds,
        inhibitions=tuple(
            Inhibition(source=dict(i.source), target=dict(i.target), equal=tuple(i.equal))
            for i in settings.inhibitions
        ),
    )


def build_dispatcher(settings: NotifySettings, bus: Bus, clock: Clock) -> Dispatcher:
    notifiers: list[Notifier] = []
    if settings.log:
        notifiers.append(LogNotifier())
    if settings.bus_events:
        notifiers.append(BusNotifier(bus, clock))
    notifiers += [WebhookNotifier(url) for url in settings.webhooks]
    if settings.alertmanager_url:
        notifiers.append(AlertmanagerNotifier(settings.alertmanager_url))
    return Dispatcher(
        NotificationRouter(routing_policy(settings)), notifiers, clock, webhook=WebhookNotifier
    )
