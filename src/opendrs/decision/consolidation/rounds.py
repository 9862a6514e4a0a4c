"""One consolidation round as CloudSim 3.0.3 runs it: find overloaded hosts, take VMs
off them one at a time until they are not, place those VMs by PABFD, then try to empty
every other active host, least utilised first, all its VMs or none."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from opendrs.decision.consolidation.detectors import Detector
from opendrs.decision.consolidation.load import Load
from opendrs.decision.consolidation.placement import Placer
from opendrs.decision.consolidation.selection import Selector
from opendrs.decision.consolidation.snapshot import BoolArray, Snapshot


@dataclass(frozen=True, slots=True)
class Migration:
    vm: int
    source: int
    destination: int
    reason: str


@dataclass(frozen=True, slots=True)
class RoundResult:
    migrations: tuple[Migration, ...]
    overloaded: int
    emptied: tuple[int, ...]
    chained: int  # VMs CloudSim would migrate twice in one round (merged here)


def _by_demand(load: Load, vms: list[int]) -> list[int]:
    demand = load.snapshot.vm_demand
    return sorted(vms, key=lambda vm: -demand[vm])  # stable: ties keep their order


def run_round(
    snapshot: Snapshot,
    detector: Detector,
    selector: Selector,
    switched_off: BoolArray,
    *,
    underload: bool = True,
) -> RoundResult:
    load = Load(snapshot)
    everything = np.arange(snapshot.hosts)
    overloaded = detector.overloaded(load, everything)
    picked: list[int] = []
    for host in np.flatnonzero(overloaded).tolist():
        while True:
            vm = selector.pick(load, host)
            if vm is None:
                break
            picked.append(vm)
            load.remove(vm, host)
            if not detector.overloaded(load, np.array([host]))[0]:
                break
    moves: list[Migration] = []
    placer = Placer(load, detector, overloaded)
    for vm in _by_demand(load, picked):
        destination = placer.find(vm)
        if destination >= 0:
            load.add(vm, destination)
            moves.append(
                Migration(vm, int(snapshot.vm_host[vm]), destination, "relieve overloaded host")
            )
    emptied: list[int] = []
    if underload:
        emptied = _underload(load, placer, overloaded, switched_off, moves)
    return _merge(snapshot, moves, int(overloaded.sum()), emptied)


def _underload(
    load: Load,
    placer: Placer,
    overloaded: BoolArray,
    switched_off: BoolArray,
    moves: list[Migration],
) -> list[int]:
    utilisation = load.utilisation
    not_source = overloaded | switched_off
    # No VM goes to an overloaded host (the placer excludes those already), to a
    # switched-off one, or to a host once it has been tried as a source.
    placer.exclude(switched_off)
    # Hosts with no VM of their own that may move cannot be emptied.
    emptied: list[int] = []
    # Utilisation is the measured one and never changes within the round, and hosts
    # only ever leave the eligible set: least utilised first (ties: lowest index) is
    # one stable sort, skipping hosts excluded meanwhile.
    eligible = ~not_source & (utilisation > 0.0) & (utilisation < 1.0)
    candidates = np.flatnonzero(eligible)
    order = candidates[np.argsort(utilisation[candidates], kind="stable")].tolist()
    for host in order:
        if not_source[host]:
            continue
        not_source[host] = True
        placer.exclude_host(host)
        vms = load.movable(host)
        if not vms:
            continue
        placed: list[tuple[int, int]] = []
        for vm in _by_demand(load, vms):
            destination = placer.find(vm)
            if destination < 0:
                for done_vm, done_host in placed:
                    load.remove(done_vm, done_host)
                placed = []
                break
            load.add(vm, destination)
            placed.append((vm, destination))
        if placed:
            emptied.append(host)
            for vm, destination in placed:
                not_source[destination] = True
                moves.append(Migration(vm, host, destination, f"empty under-used host {host}"))
    return emptied


def _merge(
    snapshot: Snapshot, moves: list[Migration], overloaded: int, emptied: list[int]
) -> RoundResult:
    """One move per VM: a VM placed on a host that is then emptied goes straight to
    its final host (CloudSim would start both migrations)."""
    final: dict[int, Migration] = {}
    chained = 0
    for move in moves:
        if move.vm in final:
            chained += 1
            first = final[move.vm]
            move = Migration(move.vm, first.source, move.destination, move.reason)
        final[move.vm] = move
    kept = tuple(m for m in final.values() if m.source != m.destination)
    return RoundResult(kept, overloaded, tuple(emptied), chained)
