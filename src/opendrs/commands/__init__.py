"""CLI commands, one module per noun; cli.py registers them."""
