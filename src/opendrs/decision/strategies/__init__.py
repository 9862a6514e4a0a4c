"""Built-in strategies; more are found through the `opendrs.strategies` entry points."""
