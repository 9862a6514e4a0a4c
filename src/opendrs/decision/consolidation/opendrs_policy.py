"""opendrs' own consolidation policy (placeholder while being built)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from opendrs.decision.consolidation.policies import BeloglazovBuyya, GOAL


class OpendrsConsolidation(BeloglazovBuyya):
    name: ClassVar[str] = "opendrs_consolidation"
    goal: ClassVar[str] = GOAL
