"""Scheduled continuous audits: an audit's interval and its last and next run times,
so a restarted server resumes each schedule where it was.

Revision ID: 0004_audit_schedules
Revises: 0003_cep_state
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_audit_schedules"
down_revision = "0003_cep_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns need no default: every existing audit is unscheduled.
    with op.batch_alter_table("audits") as batch:
        batch.add_column(sa.Column("interval_seconds", sa.Double, nullable=True))
        batch.add_column(sa.Column("next_run_at", sa.Double, nullable=True))
        batch.add_column(sa.Column("last_run_at", sa.Double, nullable=True))
        batch.create_index("ix_audits_next_run_at", ["next_run_at"])


def downgrade() -> None:
    with op.batch_alter_table("audits") as batch:
        batch.drop_index("ix_audits_next_run_at")
        batch.drop_column("last_run_at")
        batch.drop_column("next_run_at")
        batch.drop_column("interval_seconds")
