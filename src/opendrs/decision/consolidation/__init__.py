"""Dynamic VM consolidation (goal `server_consolidation`): the Beloglazov & Buyya
family of CloudSim (overload detectors, VM selection, power-aware best fit decreasing,
underload switch-off) and opendrs' own policy, all working on a numpy snapshot."""
