"""Pure values, state machines and ports of opendrs; imports nothing else of ours."""
