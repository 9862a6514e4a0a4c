"""Leases: which action plan holds which host or instance, so two plans never touch
the same one at once.

Revision ID: 0002_plan_leases
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_plan_leases"
down_revision = "0001"
branch_labels = None
depends_on = None

NAME = 255
ID = 64


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("resource", sa.String(NAME), primary_key=True),
        sa.Column("owner", sa.String(ID), nullable=False),
        sa.Column("acquired_at", sa.Double, nullable=False),
    )
    op.create_index("ix_leases_owner", "leases", ["owner"])


def downgrade() -> None:
    op.drop_table("leases")
