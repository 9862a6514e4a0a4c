"""Cloud drivers: each implements the CloudDriver port (inventory, raw counters
and actions) for one kind of cloud; `sim` is the simulated one."""
