"""Evacuation marks: the host each instance was evacuated from for maintenance, so
bringing a host back knows which instances to return.

Revision ID: 0005_evacuation_marks
Revises: 0004_audit_schedules
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_evacuation_marks"
down_revision = "0004_audit_schedules"
branch_labels = None
depends_on = None

NAME = 255
ID = 64


def upgrade() -> None:
    op.create_table(
        "evacuation_marks",
        sa.Column("instance", sa.String(NAME), primary_key=True),
        sa.Column("host", sa.String(NAME), nullable=False),
        sa.Column("audit_id", sa.String(ID), nullable=False),
        sa.Column("plan_id", sa.String(ID), nullable=False),
        sa.Column("at", sa.Double, nullable=False),
    )
    op.create_index("ix_evacuation_marks_host", "evacuation_marks", ["host"])


def downgrade() -> None:
    op.drop_index("ix_evacuation_marks_host", table_name="evacuation_marks")
    op.drop_table("evacuation_marks")
