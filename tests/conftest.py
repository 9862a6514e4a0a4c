"""Shared pytest set-up: the fakes package is importable from every test."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
