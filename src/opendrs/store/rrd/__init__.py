"""Round-robin history with RRDtool's semantics: definitions, the numpy engine,
memory-mapped many-series files, an rrdtool-compatible API, and graphs."""
