"""The Beloglazov & Buyya strategies of goal `server_consolidation`, their parameters,
and policy names such as `lr-mmt-1.2` (detector-selection-parameter), `dvfs` and `npa`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from opendrs.decision.consolidation.cluster_view import snapshot_from_cluster
from opendrs.decision.consolidation.detectors import (
    Detector,
    InterquartileRange,
    LocalRegression,
    MedianAbsoluteDeviation,
    Threshold,
)
from opendrs.decision.consolidation.placement import place_all
from opendrs.decision.consolidation.rounds import RoundResult, run_round
from opendrs.decision.consolidation.selection import (
    MaximumCorrelation,
    MinimumMigrationTime,
    MinimumUtilisation,
    RandomSelection,
    Selector,
)
from opendrs.decision.consolidation.snapshot import IntArray, Snapshot
from opendrs.decision.parameters import parse_parameters
from opendrs.domain.cluster import Cluster
from opendrs.domain.errors import InvalidInput
from opendrs.domain.host import HostState
from opendrs.domain.solution import HostChange, Move, Solution

GOAL = "server_consolidation"
DETECTORS = ("thr", "iqr", "mad", "lr", "lrr")
SELECTIONS = ("mmt", "mc", "rs", "mu")
STATIC_POLICIES = ("npa", "dvfs")


def make_detector(kind: str, parameter: float) -> Detector:
    if kind == "thr":
        return Threshold(parameter)
    if kind == "mad":
        return MedianAbsoluteDeviation(parameter)
    if kind == "iqr":
        return InterquartileRange(parameter)
    if kind in ("lr", "lrr"):
        return LocalRegression(parameter)
    raise InvalidInput(
        f"unknown detector {kind!r} (known: {', '.join(DETECTORS)})", field="parameters.detector"
    )


def make_selector(kind: str, seed: int) -> Selector:
    if kind == "mmt":
        return MinimumMigrationTime()
    if kind == "mu":
        return MinimumUtilisation()
    if kind == "rs":
        return RandomSelection(seed)
    if kind == "mc":
        return MaximumCorrelation()
    raise InvalidInput(
        f"unknown VM selection {kind!r} (known: {', '.join(SELECTIONS)})",
        field="parameters.selection",
    )


@dataclass(frozen=True, slots=True)
class BeloglazovParameters:
    detector: str = "lr"
    selection: str = "mmt"
    parameter: float = 1.2
    seed: int = 0
    underload: bool = True
    power_changes: bool = False
    """Also switch emptied hosts off and woken hosts on (clouds where that is explicit)."""

    def __post_init__(self) -> None:
        make_detector(self.detector, self.parameter)
        make_selector(self.selection, self.seed)
        if self.parameter <= 0:
            raise InvalidInput(
                f"must be above 0, got {self.parameter:g}", field="parameters.parameter"
            )


def parse_policy(policy: str) -> tuple[str, dict[str, Any]]:
    """(strategy name, parameters) of a policy name like `thr-mmt-0.8`, `dvfs`, `opendrs`."""
    name = policy.strip().lower()
    if name in STATIC_POLICIES:
        return StaticPlacement.name, {}
    if name == "opendrs" or name.startswith("opendrs:"):
        return "opendrs_consolidation", _overrides(name.partition(":")[2], policy)
    parts = name.split("-")
    if len(parts) != 3 or parts[0] not in DETECTORS or parts[1] not in SELECTIONS:
        raise InvalidInput(
            f"unknown policy {policy!r}: expected npa, dvfs, opendrs or "
            f"<{'|'.join(DETECTORS)}>-<{'|'.join(SELECTIONS)}>-<number> such as lr-mmt-1.2",
            field="policy",
        )
    try:
        value = float(parts[2])
    except ValueError:
        raise InvalidInput(
            f"policy {policy!r}: {parts[2]!r} is not a number", field="policy"
        ) from None
    return BeloglazovBuyya.name, {"detector": parts[0], "selection": parts[1], "parameter": value}


def _overrides(text: str, policy: str) -> dict[str, Any]:
    """`k=v,k=v` after a policy name: parameters for the strategy."""
    found: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(
                f"policy {policy!r}: expected key=value, got {item!r}", field="policy"
            )
        found[key.strip()] = value.strip()
    return found


def solution_from_round(snapshot: Snapshot, result: RoundResult, power_changes: bool) -> Solution:
    names, hosts = snapshot.vm_names, snapshot.host_names
    moves = tuple(
        Move(names[m.vm], hosts[m.source], hosts[m.destination], reason=m.reason)
        for m in result.migrations
    )
    changes: list[HostChange] = []
    if power_changes:
        woken = sorted(
            {m.destination for m in result.migrations if not snapshot.host_on[m.destination]}
        )
        changes.extend(
            HostChange(hosts[h], HostState.ENABLED, "power on to take VMs") for h in woken
        )
        staying = np.bincount(snapshot.vm_host, minlength=snapshot.hosts)
        leaving = np.bincount(
            np.array([m.source for m in result.migrations], dtype=np.int64),
            minlength=snapshot.hosts,
        )
        for h in sorted({m.source for m in result.migrations}):
            if staying[h] == leaving[h] and snapshot.host_on[h]:
                changes.append(HostChange(hosts[h], HostState.OFF, "empty: switch off"))
    efficacy = {
        "overloaded_hosts": float(result.overloaded),
        "instance_migrations_count": float(len(moves)),
        "emptied_hosts": float(len(result.emptied)),
        "chained_migrations": float(result.chained),
    }
    explanation = (
        f"{result.overloaded} overloaded host(s), {len(moves)} migration(s), "
        f"{len(result.emptied)} host(s) emptied"
    )
    return Solution(
        moves=moves, host_changes=tuple(changes), efficacy=efficacy, explanations=(explanation,)
    )


class BeloglazovBuyya:
    """THR/IQR/MAD/LR/LRR overload detection with MMT/MC/RS/MU selection and PABFD."""

    name: ClassVar[str] = "beloglazov_buyya"
    goal: ClassVar[str] = GOAL
    display_name: ClassVar[str] = "Dynamic consolidation (Beloglazov & Buyya 2012)"
    parameters_type: ClassVar[type[BeloglazovParameters]] = BeloglazovParameters

    def __init__(self, parameters: BeloglazovParameters | None = None) -> None:
        self.parameters = parameters or BeloglazovParameters()
        p = self.parameters
        self.detector = make_detector(p.detector, p.parameter)
        self.selector = make_selector(p.selection, p.seed)

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> BeloglazovBuyya:
        return cls(
            parse_parameters(BeloglazovParameters, parameters, source=f"strategy {cls.name}")
        )

    def execute(self, cluster: Cluster) -> Solution:
        return self.execute_snapshot(snapshot_from_cluster(cluster))

    def initial_placement(self, snapshot: Snapshot) -> IntArray | None:
        """Hosts for VMs being created (CloudSim places them by PABFD too)."""
        return place_all(snapshot, self.detector)

    def execute_snapshot(self, snapshot: Snapshot) -> Solution:
        p = self.parameters
        off = ~snapshot.host_on if p.power_changes else snapshot.host_used_mips == 0.0
        result = run_round(snapshot, self.detector, self.selector, off, underload=p.underload)
        return solution_from_round(snapshot, result, p.power_changes)


@dataclass(frozen=True, slots=True)
class StaticParameters:
    pass


class StaticPlacement:
    """Never migrates (CloudSim's NPA and DVFS runs): the baseline."""

    name: ClassVar[str] = "static_placement"
    goal: ClassVar[str] = GOAL
    display_name: ClassVar[str] = "No consolidation"
    parameters_type: ClassVar[type[StaticParameters]] = StaticParameters

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> StaticPlacement:
        parse_parameters(StaticParameters, parameters, source=f"strategy {cls.name}")
        return cls()

    def execute(self, cluster: Cluster) -> Solution:
        return Solution(explanations=("static placement: nothing moves",))

    def initial_placement(self, snapshot: Snapshot) -> IntArray | None:
        return None  # the cloud's own scheduler (first fit) decides

    def execute_snapshot(self, snapshot: Snapshot) -> Solution:
        return Solution(explanations=("static placement: nothing moves",))
