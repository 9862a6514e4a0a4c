"""The host agent: polls one host's raw counters, turns them into Ceilometer
samples and rates, and runs them through the metric plugin pipeline."""
