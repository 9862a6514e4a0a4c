"""Use cases that join the pieces: inventory sync, sample ingest, detection (CEP),
optimisation (audit → plan) and the step loop that drives them in simulated time."""
