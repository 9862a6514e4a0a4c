"""In-memory stand-ins for unit tests; the contract suites check them like the real ones."""
