"""The metric plugin contract: the hooks an agent calls on every poll, what
they are given, and how a plugin reports alarm transitions.

A plugin is any object with a `name` and the hooks below (subclass `QuietHooks`
to implement only the ones you need). On every poll the agent calls, for each
instance on the host, `on_cpu`, `on_ram`, `on_disk`, `on_volume` and
`on_bandwidth` with that instance's raw counters and the Ceilometer-named
samples derived from them; then `on_host` with the host's counters and samples;
then `on_poll_done` once with everything the poll produced (every sample, and
every alarm transition plugins reported during that poll). A hook is called only
when it has samples to give.

A plugin may instead take the whole poll in one call, `on_batch(ctx, batch)`
(`opendrs.agent.batch.PollBatch`: every sample as a plain row tuple in Sample's
field order, and the raw counters by instance): the pipeline then calls it in
place of the per-instance hooks and `on_host`. It is the fast path (no Sample
object is made for it); the built-in plugins use it or `on_poll_done`, whose
`result.samples` is a lazy sequence (`SampleBatch`) whose `.rows` are free.

Plugins are called in the order they are configured, in the agent's own thread,
one plugin after the other (a plugin gets all its hooks of the poll before the
next plugin gets any); hooks a plugin leaves to `QuietHooks` are never called.
They should be quick (buffer and flush in `on_poll_done` rather than block in a
hook). A hook that raises, or a plugin whose hooks take longer than the
configured time budget in one poll, is isolated by the pipeline: the failure is
logged with the plugin's name and counted, the plugin is skipped for the rest of
that poll (its reports from the failing call are dropped), and after a
configured number of consecutive failing polls it is disabled. Other plugins are
never affected.

Plugins are found through the `opendrs.agent.plugins` entry point group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from opendrs.agent.batch import PollBatch
from opendrs.domain.alarm import AlarmTransition
from opendrs.domain.counters import HostCounters, InstanceCounters
from opendrs.domain.sample import Sample


class Hook(StrEnum):
    """The per-poll hooks, named as the plugin methods; the meters each one receives."""

    CPU = "on_cpu"  # cpu (ns, cumulative), cpu_util (%), vcpus
    RAM = "on_ram"  # memory (MB), memory.usage (MB)
    DISK = "on_disk"  # disk.device.{read,write}.bytes (B), .rate (B/s), .requests; `device`
    VOLUME = "on_volume"  # as DISK for attached volumes, labels `device` and `volume`
    BANDWIDTH = "on_bandwidth"  # network.{incoming,outgoing}.bytes, .rate, .packets; `interface`
    HOST = "on_host"  # compute.node.cpu.percent, memory.free/.used (MB), memory.free.percent


@dataclass(frozen=True, slots=True)
class PollResult:
    """Everything one poll produced: its samples, the alarm transitions plugins
    reported, and what went wrong (one line per failure; the poll went on)."""

    samples: Sequence[Sample]  # a tuple, or the poll's lazy SampleBatch
    transitions: tuple[AlarmTransition, ...]
    host: str = ""
    time: float = 0.0
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PollContext:
    """Given to every hook call: which host and poll it is, and `report` to emit an
    alarm transition (a plugin reports changes of state only, never every sample)."""

    host: str
    time: float
    _reported: list[AlarmTransition] = field(default_factory=list, repr=False)

    def report(self, transition: AlarmTransition) -> None:
        self._reported.append(transition)

    @property
    def reported(self) -> tuple[AlarmTransition, ...]:
        return tuple(self._reported)


class MetricPlugin(Protocol):
    """What the agent calls; see the module docstring for order and isolation."""

    @property
    def name(self) -> str:
        """A short unique name, used in logs, failure counts and configuration."""
        ...

    def on_cpu(
        self, ctx: PollContext, instance: InstanceCounters, samples: Sequence[Sample]
    ) -> None: ...

    def on_ram(
        self, ctx: PollContext, instance: InstanceCounters, samples: Sequence[Sample]
    ) -> None: ...

    def on_disk(
        self, ctx: PollContext, instance: InstanceCounters, samples: Sequence[Sample]
    ) -> None: ...

    def on_volume(
        self, ctx: PollContext, instance: InstanceCounters, samples: Sequence[Sample]
    ) -> None: ...

    def on_bandwidth(
        self, ctx: PollContext, instance: InstanceCounters, samples: Sequence[Sample]
    ) -> None: ...

    def on_host(self, ctx: PollContext, host: HostCounters, samples: Sequence[Sample]) -> None: ...

    def on_poll_done(self, result: PollResult) -> None:
        """Once per poll, after every other hook of every plugin (too late to report)."""
        ...


class QuietHooks:
    """Every hook of MetricPlugin doing nothing: subclass and override what you need."""

    def on_cpu(
        self, ctx: PollContext, instance: InstanceCounters, samples: Sequence[Sample]
    ) -> None:
        return None

    def on_ram(
        self, ctx: PollContext, instance: InstanceCounters, samples: Sequence[Sample]
    ) -> None:
        return None

    def on_disk(
        self, ctx: PollContext, instance: InstanceCounters, samples: Sequence[Sample]
    ) -> None:
        return None

    def on_volume(
        self, ctx: PollContext, instance: InstanceCounters, samples: Sequence[Sample]
    ) -> None:
        return None

    def on_bandwidth(
        self, ctx: PollContext, instance: InstanceCounters, samples: Sequence[Sample]
    ) -> None:
        return None

    def on_host(self, ctx: PollContext, host: HostCounters, samples: Sequence[Sample]) -> None:
        return None

    def on_batch(self, ctx: PollContext, batch: PollBatch) -> None:
        """Override to take the whole poll at once instead of the hooks above."""
        return None

    def on_poll_done(self, result: PollResult) -> None:
        return None
