"""The `cloudsim` and `realistic` simulation profiles: a vectorised data centre that
reproduces CloudSim 3.0.3's PowerVm model (or drops its artefacts), driven step by step
through the real strategies, planner and applier by services/simulation.py."""
