"""The simulated cloud: hosts and VMs driven by PlanetLab CPU traces, with
CloudSim-style CPU sharing, power models and timed live migrations.
`build_sim_cloud` makes one from the settings; `SimCloud` is the driver."""

from opendrs.cloud.sim.assembly import build_sim_cloud
from opendrs.cloud.sim.cloud import SimCloud

__all__ = ["SimCloud", "build_sim_cloud"]
