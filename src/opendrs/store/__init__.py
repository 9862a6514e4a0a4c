"""Storage adapters: the SQL cluster model and journals (sql/) and round-robin history (rrd/)."""
