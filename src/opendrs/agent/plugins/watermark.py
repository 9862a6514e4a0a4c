"""Local watermark alarms at the agent: a threshold on one meter that fires after
`for_samples` breaching polls (consecutive, N of the last M, and/or lasting
`for_seconds`) and clears, with hysteresis, once the value is back past `clear`
for `clear_samples` polls. Thresholds may differ per instance or flavor, or come
from the instance's metadata. Only changes of state are reported."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from opendrs.agent.batch import ColumnLayout, PollBatch, columns_of
from opendrs.agent.plugin import PollContext, PollResult, QuietHooks
from opendrs.config import WatermarkOverride, WatermarkRule
from opendrs.domain.alarm import AlarmState, AlarmTransition, Severity
from opendrs.domain.counters import HostCounters, InstanceCounters
from opendrs.domain.errors import InvalidInput
from opendrs.domain.sample import EntityKind, Sample

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_KINDS = {"host": EntityKind.HOST, "instance": EntityKind.INSTANCE}
_METER = operator.itemgetter(0)
_ENTITY = operator.itemgetter(1)

# One watch per rule, entity and series (a device or interface's labels).
_Key = tuple[str, str, tuple[tuple[str, str], ...]]
_NO_LABELS: tuple[tuple[str, str], ...] = ()


def _key(rule: str, entity: str, labels: Mapping[str, str] | None) -> _Key:
    return rule, entity, tuple(sorted(labels.items())) if labels else _NO_LABELS


@dataclass(slots=True)
class _Watch:
    state: AlarmState = AlarmState.OK
    streak: int = 0  # consecutive polls counting towards the next change of state
    since: float = 0.0  # time of the first poll of the streak
    history: int = 0  # last M outcomes as bits (newest lowest) for N-of-M

    def extend(self, t: float, samples: int, seconds: float | None) -> float | None:
        """One more poll in the streak; how long it has lasted, once that is long
        enough (`samples` polls, and `seconds` when set), else None."""
        self.streak += 1
        if self.streak == 1:
            self.since = t
        lasted = t - self.since
        if self.streak >= samples and (seconds is None or lasted >= seconds):
            return lasted
        return None

    @property
    def idle(self) -> bool:
        """Nothing under way: a value within the threshold changes nothing."""
        return self.state == AlarmState.OK and not self.streak and not self.history


@dataclass(frozen=True, slots=True)
class _Limits:
    threshold: float
    clear: float


class _Compiled:
    """A rule ready for the hot path: its comparison, overrides by instance and
    flavor, and the window mask of its N-of-M count."""

    __slots__ = (
        "beyond",
        "by_flavor",
        "by_instance",
        "mask",
        "per_instance",
        "plain",
        "rule",
        "severity",
    )

    def __init__(self, rule: WatermarkRule) -> None:
        self.rule = rule
        self.beyond = _OPS[rule.op]
        self.severity = Severity(rule.severity)
        self.by_instance: dict[str, WatermarkOverride] = {}
        self.by_flavor: dict[str, WatermarkOverride] = {}
        for override in rule.overrides:
            if override.instance is not None:
                self.by_instance[override.instance] = override
            elif override.flavor is not None:
                self.by_flavor[override.flavor] = override
        # whether an instance's name, flavor or metadata can change its limits
        self.per_instance = bool(rule.overrides) or rule.threshold_metadata is not None
        window = rule.of_samples or rule.for_samples
        self.mask = (1 << window) - 1
        clear = rule.threshold if rule.clear is None else rule.clear
        self.plain = _Limits(rule.threshold, clear)

    def limits(
        self, instance: InstanceCounters | None, labels: Mapping[str, str]
    ) -> _Limits | None:
        """The threshold and clear level for this entity, None if the rule is off for it."""
        rule = self.rule
        if instance is None:
            return self.plain
        override = self.by_instance.get(instance.instance)
        if override is not None:
            return self._overridden(override)
        if rule.threshold_metadata is not None:
            key = rule.threshold_metadata
            if "{" in key:
                try:
                    key = key.format_map(labels)
                except (KeyError, ValueError):
                    key = ""
            raw = instance.metadata.get(key) if key else None
            if raw is not None:
                try:
                    limit = float(raw)
                except ValueError:
                    limit = math.nan
                if math.isfinite(limit):
                    threshold = limit * rule.metadata_factor
                    factor = rule.metadata_clear_factor
                    return _Limits(threshold, threshold if factor is None else limit * factor)
        if instance.flavor:
            override = self.by_flavor.get(instance.flavor)
            if override is not None:
                return self._overridden(override)
        return self.plain

    def _overridden(self, override: WatermarkOverride) -> _Limits | None:
        if not override.enabled:
            return None
        threshold = self.rule.threshold if override.threshold is None else override.threshold
        if override.clear is not None:
            clear = override.clear
        elif override.threshold is None:
            clear = self.plain.clear
        else:
            clear = threshold
        return _Limits(threshold, clear)


_UFUNCS = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal}


def _ROW_THEN_RULE(item: tuple[int, int, object, int]) -> tuple[int, int]:
    return item[0], item[1]


class _Part:
    """One rule over the rows of its meter in one layout: where they are, their
    limits (None where the rule is off), and which watches are not idle."""

    __slots__ = (
        "active",
        "beyond",
        "enabled",
        "entities",
        "keys",
        "labels",
        "limits",
        "rows",
        "rule",
        "threshold",
    )

    def __init__(
        self, rule: _Compiled, rows: list[int], layout: ColumnLayout, watches: dict[_Key, _Watch]
    ) -> None:
        self.rule = rule
        self.beyond = _UFUNCS[rule.rule.op]
        self.rows = np.array(rows, dtype=np.intp)
        self.entities = [layout.entities[at] for at in rows]
        self.labels = [layout.labels[at] for at in rows]
        self.keys = [
            _key(rule.rule.name, entity, labels)
            for entity, labels in zip(self.entities, self.labels, strict=True)
        ]
        self.active = np.array(
            [(w := watches.get(key)) is not None and not w.idle for key in self.keys],
            dtype=bool,
        )
        self.limits: list[_Limits | None] = []
        self.threshold = np.zeros(len(rows))
        self.enabled = np.zeros(len(rows), dtype=bool)

    def set_limits(self, limits: list[_Limits | None]) -> None:
        self.limits = limits
        self.enabled = np.array([found is not None for found in limits], dtype=bool)
        self.threshold = np.array(
            [math.nan if found is None else found.threshold for found in limits], dtype=float
        )


class _Plan:
    """The rules over one layout of a poll's rows, in the order the hooks see
    them, with each row's limits worked out again only when the instances'
    flavors or metadata change."""

    def __init__(
        self,
        layout: ColumnLayout,
        by_meter: Mapping[tuple[EntityKind, str], list[_Compiled]],
        watches: dict[_Key, _Watch],
    ) -> None:
        self.layout = layout
        rows: dict[int, list[int]] = {}
        rules: dict[int, _Compiled] = {}
        for at, (kind, meter) in enumerate(zip(layout.kinds, layout.meters, strict=True)):
            for rule in by_meter.get((kind, meter), ()):
                rows.setdefault(id(rule), []).append(at)
                rules[id(rule)] = rule
        self.parts = [_Part(rules[key], found, layout, watches) for key, found in rows.items()]
        # the instances whose flavor and metadata the limits depend on
        self._instances = list(
            dict.fromkeys(
                layout.entities[row]
                for part in self.parts
                if part.rule.per_instance
                for row in part.rows.tolist()
                if layout.kinds[row] is not EntityKind.HOST
            )
        )
        self._given: list[tuple[str, Mapping[str, str]] | None] | None = None

    def refresh(self, instances: Mapping[str, InstanceCounters]) -> None:
        """Work out the limits again if what they depend on changed."""
        given = [
            None if (c := instances.get(entity)) is None else (c.flavor, c.metadata)
            for entity in self._instances
        ]
        if given == self._given:
            return
        self._given = given
        host = EntityKind.HOST
        for part in self.parts:
            limits: list[_Limits | None] = []
            for row, labels in zip(part.rows.tolist(), part.labels, strict=True):
                if self.layout.kinds[row] is host:
                    limits.append(part.rule.limits(None, labels))
                    continue
                instance = instances.get(self.layout.entities[row])
                # a row the hooks would not have been given: no limits
                limits.append(None if instance is None else part.rule.limits(instance, labels))
            part.set_limits(limits)


class WatermarkPlugin(QuietHooks):
    """Evaluates `rules` on every sample of their meter, per entity; reports
    AlarmTransitions (ok → alarm, alarm → ok) with source `agent:<host>`.

    In ok, a value beyond its threshold (by `op`) for `for_samples` consecutive
    polls (or `for_samples` of the last `of_samples`), lasting `for_seconds` if
    set, fires. In alarm, a value no longer beyond `clear` (the threshold when
    unset) for `clear_samples` consecutive polls, lasting `clear_for_seconds` if
    set, clears; a value between the two keeps the alarm (hysteresis).
    """

    name = "watermark"

    def __init__(self, rules: Sequence[WatermarkRule]) -> None:
        self._rules = _checked(rules)
        self._watches: dict[_Key, _Watch] = {}
        self._plan: _Plan | None = None  # made again for a new layout or new rules
        self._compile()
        self._seen: tuple[ColumnLayout, frozenset[str]] | None = None

    @property
    def rules(self) -> list[WatermarkRule]:
        return list(self._rules.values())

    def replace_rules(self, rules: Sequence[WatermarkRule]) -> None:
        """Use `rules` from now on; a rule whose identity (name, meter, entity, op)
        did not change keeps its alarm states, the others start afresh.

        Raises InvalidInput and keeps the current rules if the new ones are bad.
        """
        checked = _checked(rules)
        kept = {
            name
            for name, rule in checked.items()
            if name in self._rules and self._rules[name].identity == rule.identity
        }
        self._rules = checked
        self._watches = {k: w for k, w in self._watches.items() if k[0] in kept}
        self._compile()

    def state(self, rule: str, entity: str, labels: dict[str, str] | None = None) -> AlarmState:
        """The state of `rule` for `entity` (and a device's labels), ok if never seen."""
        watch = self._watches.get(_key(rule, entity, labels))
        return watch.state if watch is not None else AlarmState.OK

    # --- hooks -----------------------------------------------------------

    def on_cpu(
        self, ctx: PollContext, instance: InstanceCounters, samples: Sequence[Sample]
    ) -> None:
        self._evaluate(ctx, samples, instance)

    # every instance hook evaluates its samples the same way
    on_ram = on_disk = on_volume = on_bandwidth = on_cpu

    def on_host(self, ctx: PollContext, host: HostCounters, samples: Sequence[Sample]) -> None:
        self._evaluate(ctx, samples, None)

    def on_batch(self, ctx: PollContext, batch: PollBatch) -> None:
        """The whole poll at once: the same evaluation as the hooks, in the same
        order. The comparisons run as arrays; only the rows that breach, or whose
        watch is not idle, step through the rule one by one."""
        columns = batch.columns
        plan = self._plan
        if plan is None or plan.layout is not columns.layout:
            plan = self._plan = _Plan(columns.layout, self._by_meter, self._watches)
        plan.refresh(batch.instances)
        values = columns.values
        picked: list[tuple[int, int, _Part, int]] = []
        for order, part in enumerate(plan.parts):
            scaled = values[part.rows] * part.rule.rule.scale
            with np.errstate(invalid="ignore"):
                breach = part.beyond(scaled, part.threshold)
            due = (breach | part.active) & part.enabled & np.isfinite(scaled)
            for at in np.flatnonzero(due).tolist():
                picked.append((int(part.rows[at]), order, part, at))
        picked.sort(key=_ROW_THEN_RULE)
        times = columns.times
        for row, _, part, at in picked:
            limits = part.limits[at]
            assert limits is not None  # (rows without limits are never due)
            entity, labels = part.entities[at], part.labels[at]
            raw = float(values[row])
            self._step(ctx, part.rule, limits, entity, raw, float(times[row]), labels)
            watch = self._watches[part.keys[at]]
            part.active[at] = not watch.idle

    def on_poll_done(self, result: PollResult) -> None:
        # Entities that left the host take their quiet watches with them; a watch in
        # alarm is kept so the alarm is not silently forgotten.
        layout = columns_of(result.samples).layout
        seen = self._seen
        if seen is None or seen[0] is not layout:
            seen = self._seen = (layout, frozenset(layout.entities))
        entities = seen[1]
        if any(k[1] not in entities for k in self._watches):
            self._watches = {
                k: w
                for k, w in self._watches.items()
                if k[1] in entities or w.state != AlarmState.OK
            }

    # --- evaluation ------------------------------------------------------

    def _compile(self) -> None:
        self._plan = None
        self._by_meter: dict[tuple[EntityKind, str], list[_Compiled]] = {}
        for rule in self._rules.values():
            key = (_KINDS[rule.entity], rule.meter)
            self._by_meter.setdefault(key, []).append(_Compiled(rule))
        self._meters = frozenset(meter for _, meter in self._by_meter)

    def _evaluate(
        self, ctx: PollContext, samples: Iterable[Sample], instance: InstanceCounters | None
    ) -> None:
        by_meter = self._by_meter
        for sample in samples:
            compiled = by_meter.get((sample.kind, sample.meter))
            if compiled is None or not math.isfinite(sample.value):
                continue
            for rule in compiled:
                limits = rule.limits(instance, sample.labels)
                if limits is not None:
                    self._step(
                        ctx, rule, limits, sample.entity, sample.value, sample.time, sample.labels
                    )

    def _step(
        self,
        ctx: PollContext,
        c: _Compiled,
        limits: _Limits,
        entity: str,
        raw: float,
        t: float,
        labels: Mapping[str, str],
    ) -> None:
        rule = c.rule
        key = _key(rule.name, entity, labels)
        watch = self._watches.get(key)
        if watch is None:
            watch = self._watches[key] = _Watch()
        value = raw * rule.scale
        if watch.state == AlarmState.OK:
            breach = c.beyond(value, limits.threshold)
            if rule.of_samples is not None and rule.of_samples > rule.for_samples:
                watch.history = ((watch.history << 1) | breach) & c.mask
                count = watch.history.bit_count()
                if breach and count >= rule.for_samples:
                    reason = (
                        f"{rule.meter} {value:g} {rule.op} {limits.threshold:g} "
                        f"in {count} of the last {rule.of_samples} poll(s)"
                    )
                    self._change(ctx, c, entity, t, labels, value, watch, AlarmState.ALARM, reason)
                return
            if not breach:
                watch.streak = 0
                return
            lasted = watch.extend(t, rule.for_samples, rule.for_seconds)
            if lasted is not None:
                held = f" over {lasted:g} s" if rule.for_seconds is not None else ""
                reason = (
                    f"{rule.meter} {value:g} {rule.op} {limits.threshold:g} "
                    f"for {watch.streak} poll(s){held}"
                )
                self._change(ctx, c, entity, t, labels, value, watch, AlarmState.ALARM, reason)
        else:
            if c.beyond(value, limits.clear):
                watch.streak = 0
                return
            if watch.extend(t, rule.clear_samples, rule.clear_for_seconds) is not None:
                reason = (
                    f"{rule.meter} {value:g} back within {limits.clear:g} "
                    f"for {watch.streak} poll(s)"
                )
                self._change(ctx, c, entity, t, labels, value, watch, AlarmState.OK, reason)

    def _change(
        self,
        ctx: PollContext,
        c: _Compiled,
        entity: str,
        t: float,
        labels: Mapping[str, str],
        value: float,
        watch: _Watch,
        wanted: AlarmState,
        reason: str,
    ) -> None:
        previous = watch.state
        watch.state = wanted
        watch.streak = 0
        watch.history = 0
        ctx.report(
            AlarmTransition(
                rule=c.rule.name,
                entity=entity,
                previous=previous,
                current=wanted,
                time=t,
                value=value,
                severity=c.severity,
                source=f"agent:{ctx.host}",
                reason=reason,
                labels={**labels, "host": ctx.host, "meter": c.rule.meter},
            )
        )


def _checked(rules: Sequence[WatermarkRule]) -> dict[str, WatermarkRule]:
    by_name: dict[str, WatermarkRule] = {}
    for rule in rules:
        source = f"watermark rule {rule.name!r}"
        if rule.name in by_name:
            raise InvalidInput("two rules have this name", source=source, field="name")
        if rule.clear is not None:
            above = rule.op in (">", ">=")
            if (above and rule.clear > rule.threshold) or (
                not above and rule.clear < rule.threshold
            ):
                side = "at or below" if above else "at or above"
                raise InvalidInput(
                    f"clear {rule.clear:g} must be {side} the threshold {rule.threshold:g} "
                    f"for op {rule.op!r}",
                    source=source,
                    field="clear",
                )
        by_name[rule.name] = rule
    return by_name
