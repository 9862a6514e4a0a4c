"""The applier: runs action plans through a cloud driver, journaling every step so a
restart resumes instead of repeating or abandoning work."""

from opendrs.applier.executor import PlanExecutor, TransitionHook

__all__ = ["PlanExecutor", "TransitionHook"]
