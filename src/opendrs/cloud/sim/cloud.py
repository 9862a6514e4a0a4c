"""SimCloud: a whole simulated cloud behind the CloudDriver port.

State is advanced lazily to the injected clock whenever it is queried: CPU time,
I/O bytes, host busy time and energy are integrated piecewise between trace
samples and migration ends, so every answer is consistent with `clock.now()`.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from opendrs.cloud.sim.power import PowerModel
from opendrs.cloud.sim.sharing import share_cpu
from opendrs.cloud.sim.specs import HostSpec, VmSpec
from opendrs.cloud.sim.traces import TRACE_STEP_SECONDS, Workload
from opendrs.domain.clock import Clock
from opendrs.domain.counters import DeviceBytes, HostCounters, InstanceCounters
from opendrs.domain.errors import DriverError, InvalidInput, InvalidTransition
from opendrs.domain.host import Host, HostState
from opendrs.domain.instance import Flavor, Instance, InstanceState
from opendrs.domain.ports import Operation, OperationState

log = logging.getLogger(__name__)

Vector = npt.NDArray[np.float64]

_NS = 1e9
# Columns of the I/O counters: disk read, disk write, interface rx, interface tx.
_IO_COLUMNS = 4
HYPERVISOR_VERSION = 8002000  # QEMU 8.2.0 as Nova encodes it


@dataclass(slots=True)
class _Migration:
    id: str
    vm: int
    source: int
    destination: int
    start: float
    end: float
    state: OperationState = OperationState.RUNNING
    message: str = ""


@dataclass(frozen=True, slots=True)
class _Rates:
    """Instantaneous values at one time, for the current placement."""

    demand: Vector  # cores each VM wants (capped at its vCPUs)
    granted: Vector  # cores each VM gets after proportional sharing
    load: Vector  # cores each host is asked for (residents + migration overhead)
    busy: Vector  # cores each host spends
    watts: Vector


class SimCloud:
    """Hosts and VMs with trace-driven CPU demand; implements CloudDriver.

    CPU sharing follows CloudSim's over-subscription scheduler: a VM whose trace
    reads `u` wants u·mips_per_vcpu / host_mips cores (never more than its vCPUs,
    see VmSpec); when a host's demand exceeds its cores, everyone on it is scaled down
    by the same factor. An incoming live migration costs the destination
    `migration_cpu_overhead` of the VM's demand. Hosts that are off or hold no VM
    draw no power (CloudSim counts an idle empty host as switched off) unless
    `empty_hosts_draw_power`. Counters restart at zero on the destination after a
    migration, as a new QEMU process's do.
    """

    def __init__(
        self,
        hosts: Sequence[HostSpec],
        vms: Sequence[VmSpec],
        placement: Mapping[str, str],
        clock: Clock,
        *,
        trace_step: float = TRACE_STEP_SECONDS,
        wrap: bool = True,
        origin: float | None = None,
        migration_cpu_overhead: float = 0.1,
        empty_hosts_draw_power: bool = False,
    ) -> None:
        self._clock = clock
        self._hosts = list(hosts)
        self._vms = list(vms)
        self._host_index = _index(self._hosts, "host")
        self._vm_index = _index(self._vms, "instance")
        for vm in self._vms:
            where = placement.get(vm.name)
            if where is None:
                raise InvalidInput(f"instance {vm.name} has no host", source="sim placement")
            if where not in self._host_index:
                raise InvalidInput(
                    f"instance {vm.name} is placed on unknown host {where!r}",
                    source="sim placement",
                )
        if not 0.0 <= migration_cpu_overhead <= 1.0:
            raise InvalidInput("migration_cpu_overhead must be within 0..1", source="sim cloud")
        self._overhead = migration_cpu_overhead
        self._empty_draw = empty_hosts_draw_power
        self._workload = Workload([vm.trace for vm in self._vms], step=trace_step, wrap=wrap)

        n, h = len(self._vms), len(self._hosts)
        self._host_of = np.array(
            [self._host_index[placement[vm.name]] for vm in self._vms], dtype=np.int64
        )
        self._vcpus = np.array([vm.vcpus for vm in self._vms], dtype=np.float64)
        self._vm_mips = np.array([vm.mips_per_vcpu for vm in self._vms], dtype=np.float64)
        self._io_full = np.array(
            [
                [vm.io.disk_read_bps, vm.io.disk_write_bps, vm.io.net_rx_bps, vm.io.net_tx_bps]
                for vm in self._vms
            ],
            dtype=np.float64,
        ).reshape(n, _IO_COLUMNS)
        self._io_idle = np.array([vm.io.idle_share for vm in self._vms], dtype=np.float64)
        self._memory_used = np.array(
            [vm.memory_mb * vm.memory_used_fraction for vm in self._vms], dtype=np.float64
        )
        self._cores = np.array([s.cores for s in self._hosts], dtype=np.float64)
        self._host_mips = np.array([s.mips_per_core for s in self._hosts], dtype=np.float64)
        self._power_groups = _group_by_model(self._hosts)
        self._flavors = np.array(
            [[vm.vcpus, vm.memory_mb, vm.disk_gb] for vm in self._vms], dtype=np.int64
        ).reshape(n, 3)
        self._cpu_info = [_cpu_info(spec) for spec in self._hosts]

        self._cpu_ns = np.zeros(n, dtype=np.float64)
        self._io = np.zeros((n, _IO_COLUMNS), dtype=np.float64)
        self._busy_ns = np.zeros(h, dtype=np.float64)
        self._energy = np.zeros(h, dtype=np.float64)
        self._requested_core_s = 0.0
        self._granted_core_s = 0.0
        self._states = [HostState.ENABLED] * h
        self._reasons: list[str | None] = [None] * h

        self._operations: dict[str, _Migration] = {}
        self._moving: dict[int, _Migration] = {}
        self._op_numbers = itertools.count(1)
        self.migrations_completed = 0
        self.migrations_failed = 0

        self._time = clock.now()
        self._origin = self._time if origin is None else origin

    # --- CloudInventory --------------------------------------------------

    def list_hosts(self) -> list[Host]:
        self._advance()
        return self._host_views()

    def list_instances(self) -> list[Instance]:
        self._advance()
        return [
            Instance(
                name=vm.name,
                host=self._hosts[int(self._host_of[i])].name,
                flavor=Flavor(vm.flavor_name, vm.vcpus, vm.memory_mb, vm.disk_gb),
                state=InstanceState.MIGRATING if i in self._moving else InstanceState.ACTIVE,
                metadata={"trace": vm.trace.name},
            )
            for i, vm in enumerate(self._vms)
        ]

    # --- StatsSource -----------------------------------------------------

    def host_counters(self, host: str) -> HostCounters:
        self._advance()
        h = self._reachable_host(host)
        spec = self._hosts[h]
        used_mb = float(self._memory_used[self._host_of == h].sum())
        used_mb += sum(float(self._memory_used[m.vm]) for m in self._incoming(h))
        used_gb = sum(self._vms[v].disk_gb for v in self._present_on(h))
        return HostCounters(
            host=spec.name,
            time=self._time,
            cores=spec.cores,
            cpu_time_ns=int(self._busy_ns[h]),
            memory_mb=spec.memory_mb,
            memory_free_mb=max(spec.memory_mb - used_mb, 0.0),
            local_gb=spec.disk_gb,
            local_gb_free=max(float(spec.disk_gb - used_gb), 0.0),
        )

    def instance_counters(self, host: str) -> list[InstanceCounters]:
        self._advance()
        h = self._reachable_host(host)
        found = [int(v) for v in np.flatnonzero(self._host_of == h)]
        return [self._counters_of(v) for v in sorted(found, key=lambda v: self._vms[v].name)]

    # --- CloudActions ----------------------------------------------------

    def start_migration(self, instance: str, destination: str, live: bool = True) -> str:
        """Start a migration lasting memory_mb·8 / bandwidth_mbps seconds (the slower
        host's link); cold migrations are timed the same way."""
        self._advance()
        v = self._vm_index.get(instance)
        if v is None:
            raise DriverError(f"unknown instance {instance!r}")
        d = self._host_index.get(destination)
        if d is None:
            raise DriverError(f"unknown destination host {destination!r}")
        if v in self._moving:
            raise DriverError(
                f"instance {instance} is already migrating (operation {self._moving[v].id})"
            )
        s = int(self._host_of[v])
        if s == d:
            raise DriverError(f"instance {instance} is already on {destination}")
        if self._states[d] in (HostState.OFF, HostState.MAINTENANCE):
            raise DriverError(f"destination {destination} is {self._states[d].value}")
        self._check_room(v, d)
        vm, dest = self._vms[v], self._hosts[d]
        bandwidth = min(dest.bandwidth_mbps, self._hosts[s].bandwidth_mbps)
        duration = vm.memory_mb * 8.0 / bandwidth
        op = _Migration(
            id=f"sim-migration-{next(self._op_numbers)}",
            vm=v,
            source=s,
            destination=d,
            start=self._time,
            end=self._time + duration,
        )
        self._operations[op.id] = op
        self._moving[v] = op
        log.info(
            "migrating %s from %s to %s (%s, %.1f s)",
            instance,
            self._hosts[s].name,
            destination,
            "live" if live else "cold",
            duration,
        )
        return op.id

    def operation(self, operation_id: str) -> Operation:
        self._advance()
        op = self._operations.get(operation_id)
        if op is None:
            raise DriverError(f"unknown operation {operation_id!r}")
        return Operation(op.id, op.state, op.message)

    def locate(self, instance: str) -> str | None:
        self._advance()
        v = self._vm_index.get(instance)
        return None if v is None else self._hosts[int(self._host_of[v])].name

    def set_host_state(self, host: str, state: HostState, reason: str | None = None) -> None:
        self._advance()
        h = self._host_index.get(host)
        if h is None:
            raise DriverError(f"unknown host {host!r}")
        if state == HostState.OFF and self._present_on(h):
            raise DriverError(
                f"host {host} still holds {len(self._present_on(h))} instance(s); "
                "migrate them before powering it off"
            )
        probe = Host(name=host, vcpus=1, memory_mb=1, state=self._states[h])
        try:
            probe.with_state(state, reason)
        except InvalidTransition as exc:
            raise DriverError(str(exc)) from exc
        self._states[h] = state
        self._reasons[h] = reason

    # --- fault injection -------------------------------------------------

    def fail_operation(self, operation_id: str, message: str = "injected failure") -> None:
        """Abort a running migration: the VM stays on its source, the destination is freed."""
        self._advance()
        op = self._operations.get(operation_id)
        if op is None:
            raise DriverError(f"unknown operation {operation_id!r}")
        if op.state != OperationState.RUNNING:
            raise DriverError(f"operation {operation_id} is already {op.state.value}")
        op.state = OperationState.FAILED
        op.message = message
        del self._moving[op.vm]
        self.migrations_failed += 1

    # --- metrics ---------------------------------------------------------

    @property
    def time(self) -> float:
        """The time the state has been integrated to (the clock's, after any query)."""
        return self._time

    @property
    def energy_joules(self) -> float:
        self._advance()
        return float(self._energy.sum())

    def host_energy_joules(self, host: str) -> float:
        self._advance()
        return float(self._energy[self._known_host(host)])

    def power_watts(self) -> float:
        """What the whole cloud draws now."""
        self._advance()
        return float(self._rates(self._time).watts.sum())

    def host_demand(self, host: str) -> float:
        """CPU demand / capacity now; above 1 when the host is over-subscribed."""
        self._advance()
        h = self._known_host(host)
        return float(self._rates(self._time).load[h] / self._cores[h])

    def host_utilisation(self, host: str) -> float:
        """CPU demand / capacity now, within 0..1."""
        return min(self.host_demand(host), 1.0)

    def overloaded_hosts(self, threshold: float) -> list[str]:
        """Hosts whose demand / capacity is above `threshold` (0..1), by name."""
        self._advance()
        ratio = self._rates(self._time).load / self._cores
        return sorted(self._hosts[i].name for i in np.flatnonzero(ratio > threshold))

    def instance_utilisation(self, instance: str) -> float:
        """What the instance's trace asks for now, as a fraction of its capacity."""
        self._advance()
        v = self._vm_index.get(instance)
        if v is None:
            raise DriverError(f"unknown instance {instance!r}")
        return float(self._workload.at(self._time - self._origin)[v])

    def instance_count(self) -> int:
        """Distinct instances placed on some host: never more or less than created."""
        self._advance()
        on_hosts = (self._host_of >= 0) & (self._host_of < len(self._hosts))
        return int(np.count_nonzero(on_hosts))

    @property
    def sla_violation(self) -> float:
        """Share of requested CPU time not granted so far (CloudSim's overall SLA violation)."""
        self._advance()
        if self._requested_core_s <= 0:
            return 0.0
        return max(0.0, 1.0 - self._granted_core_s / self._requested_core_s)

    # --- integration -----------------------------------------------------

    def _advance(self) -> None:
        now = self._clock.now()
        while self._time < now:
            next_end = min((m.end for m in self._moving.values()), default=now)
            stop = min(now, next_end)
            knots = self._workload.knots_between(self._time - self._origin, stop - self._origin)
            for point in [*(min(k + self._origin, stop) for k in knots), stop]:
                if point > self._time:
                    self._integrate(self._time, point)
                    self._time = point
            self._time = stop
            self._finish_migrations()

    def _finish_migrations(self) -> None:
        for op in [m for m in self._moving.values() if m.end <= self._time]:
            self._host_of[op.vm] = op.destination
            self._cpu_ns[op.vm] = 0.0
            self._io[op.vm, :] = 0.0
            op.state = OperationState.SUCCEEDED
            op.message = f"moved to {self._hosts[op.destination].name}"
            del self._moving[op.vm]
            self.migrations_completed += 1

    def _integrate(self, start: float, end: float) -> None:
        dt = end - start
        a = self._rates(start)
        b = self._rates(end, closing=True)
        self._cpu_ns += (a.granted + b.granted) * (0.5 * dt * _NS)
        self._io += (self._io_rates(a.granted) + self._io_rates(b.granted)) * (0.5 * dt)
        self._busy_ns += (a.busy + b.busy) * (0.5 * dt * _NS)
        self._energy += (a.watts + b.watts) * (0.5 * dt)
        self._requested_core_s += float(a.demand.sum() + b.demand.sum()) * 0.5 * dt
        self._granted_core_s += float(a.granted.sum() + b.granted.sum()) * 0.5 * dt

    def _rates(self, t: float, *, closing: bool = False) -> _Rates:
        hosts = len(self._hosts)
        utilisation = self._workload.at(t - self._origin, closing=closing)
        demand = np.minimum(
            utilisation * self._vm_mips / self._host_mips[self._host_of], self._vcpus
        )
        extra = np.zeros(hosts, dtype=np.float64)
        incoming = np.zeros(hosts, dtype=np.int64)
        for op in self._moving.values():
            extra[op.destination] += self._overhead * demand[op.vm]
            incoming[op.destination] += 1
        shares = share_cpu(demand, self._host_of, extra, self._cores)
        residents = np.bincount(self._host_of, minlength=hosts)
        on = np.array([s != HostState.OFF for s in self._states], dtype=bool)
        active = on if self._empty_draw else on & ((residents + incoming) > 0)
        watts = np.zeros(hosts, dtype=np.float64)
        for model, members in self._power_groups:
            watts[members] = model.watts(shares.busy[members] / self._cores[members])
        return _Rates(
            demand, shares.granted, shares.load, shares.busy, np.where(active, watts, 0.0)
        )

    def _io_rates(self, granted: Vector) -> Vector:
        load = granted / self._vcpus
        share = self._io_idle + (1.0 - self._io_idle) * load
        rates: Vector = self._io_full * share[:, np.newaxis]
        return rates

    # --- views and checks ------------------------------------------------

    def _counters_of(self, v: int) -> InstanceCounters:
        vm = self._vms[v]
        io = self._io[v]
        return InstanceCounters(
            instance=vm.name,
            time=self._time,
            vcpus=vm.vcpus,
            cpu_time_ns=int(self._cpu_ns[v]),
            memory_mb=vm.memory_mb,
            memory_used_mb=round(float(self._memory_used[v]), 1),
            disks={"vda": DeviceBytes(read=int(io[0]), write=int(io[1]))},
            interfaces={f"vnet{v}": DeviceBytes(read=int(io[2]), write=int(io[3]))},
            flavor=vm.flavor_name,
            metadata={"trace": vm.trace.name},
        )

    def _host_views(self) -> list[Host]:
        hosts = len(self._hosts)
        residents = np.bincount(self._host_of, minlength=hosts)
        # claims per host: vCPUs, RAM, disk of residents and of incoming migrations
        claims = np.zeros((hosts, 3), dtype=np.int64)
        np.add.at(claims, self._host_of, self._flavors)
        workload = np.zeros(hosts, dtype=np.int64)
        for op in self._moving.values():
            claims[op.destination] += self._flavors[op.vm]
            workload[op.source] += 1
            workload[op.destination] += 1
        return [
            Host(
                name=spec.name,
                vcpus=spec.cores,
                memory_mb=spec.memory_mb,
                local_gb=spec.disk_gb,
                vcpus_used=int(claims[h, 0]),
                memory_mb_used=int(claims[h, 1]),
                local_gb_used=int(claims[h, 2]),
                running_vms=int(residents[h]),
                current_workload=int(workload[h]),
                disk_available_least=spec.disk_gb - int(claims[h, 2]),
                hypervisor_type="QEMU",
                hypervisor_version=HYPERVISOR_VERSION,
                cpu_info=self._cpu_info[h],
                cpu_allocation_ratio=spec.cpu_allocation_ratio,
                ram_allocation_ratio=spec.ram_allocation_ratio,
                disk_allocation_ratio=spec.disk_allocation_ratio,
                state=self._states[h],
                disabled_reason=self._reasons[h],
            )
            for h, spec in enumerate(self._hosts)
        ]

    def _incoming(self, h: int) -> list[_Migration]:
        return [m for m in self._moving.values() if m.destination == h]

    def _present_on(self, h: int) -> list[int]:
        """VMs that count on host h: those on it and those migrating to it."""
        residents = [int(v) for v in np.flatnonzero(self._host_of == h)]
        return residents + [m.vm for m in self._incoming(h)]

    def _check_room(self, v: int, d: int) -> None:
        vm, dest = self._vms[v], self._hosts[d]
        present = self._present_on(d)
        vcpus = sum(self._vms[p].vcpus for p in present) + vm.vcpus
        memory = sum(self._vms[p].memory_mb for p in present) + vm.memory_mb
        disk = sum(self._vms[p].disk_gb for p in present) + vm.disk_gb
        if vcpus > dest.vcpu_capacity:
            raise DriverError(
                f"not enough vCPUs on {dest.name}: {vcpus} needed, {dest.vcpu_capacity:g} allowed"
            )
        if memory > dest.memory_capacity_mb:
            raise DriverError(
                f"not enough RAM on {dest.name}: {memory} MB needed, "
                f"{dest.memory_capacity_mb:g} MB allowed"
            )
        if disk > dest.disk_capacity_gb:
            raise DriverError(
                f"not enough disk on {dest.name}: {disk} GB needed, "
                f"{dest.disk_capacity_gb:g} GB allowed"
            )

    def _known_host(self, host: str) -> int:
        h = self._host_index.get(host)
        if h is None:
            raise DriverError(f"unknown host {host!r}")
        return h

    def _reachable_host(self, host: str) -> int:
        h = self._known_host(host)
        if self._states[h] == HostState.OFF:
            raise DriverError(f"host {host} is off")
        return h


def _index(items: Sequence[HostSpec | VmSpec], kind: str) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, item in enumerate(items):
        if item.name in index:
            raise InvalidInput(f"two {kind}s named {item.name!r}", source="sim cloud")
        index[item.name] = i
    return index


def _cpu_info(spec: HostSpec) -> str:
    """Nova's cpu_info JSON for a simulated host."""
    return json.dumps(
        {
            "arch": "x86_64",
            "model": "sim",
            "vendor": "opendrs",
            "topology": {"sockets": 1, "cores": spec.cores, "threads": 1},
            "mips_per_core": spec.mips_per_core,
        },
        sort_keys=True,
    )


def _group_by_model(hosts: Sequence[HostSpec]) -> list[tuple[PowerModel, npt.NDArray[np.int64]]]:
    """Hosts sharing a power model, so power is computed once per model per step."""
    groups: dict[int, tuple[PowerModel, list[int]]] = {}
    for i, spec in enumerate(hosts):
        groups.setdefault(id(spec.power), (spec.power, []))[1].append(i)
    return [(model, np.array(members, dtype=np.int64)) for model, members in groups.values()]
