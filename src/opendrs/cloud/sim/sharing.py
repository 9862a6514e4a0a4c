"""CPU sharing on a host, as CloudSim's over-subscription scheduler does it:
everyone gets what they ask for while it fits, else all are scaled down alike."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Shares:
    granted: Vector  # cores each VM gets
    load: Vector  # cores each host is asked for
    busy: Vector  # cores each host spends (load, capped at its cores)


def share_cpu(
    demand: Vector, host_of: npt.NDArray[np.int64], extra: Vector, cores: Vector
) -> Shares:
    """`demand[i]` cores wanted by VM i on host `host_of[i]`; `extra[h]` more cores
    wanted on host h (migration work); `cores[h]` what host h has."""
    load = np.bincount(host_of, weights=demand, minlength=len(cores)).astype(np.float64) + extra
    scale = np.where(load > cores, cores / np.maximum(load, 1e-12), 1.0)
    return Shares(granted=demand * scale[host_of], load=load, busy=load * scale)
