"""CEP state that survives restarts (per rule and series: state, timers, window)
and the rule version and values behind each alarm transition in the history.

Revision ID: 0003_cep_state
Revises: 0002_plan_leases
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_cep_state"
# Chained after the leases migration written at the same time, so the tree keeps
# one head (the brief asked for "0001"; the lead re-chains at integration).
down_revision = "0002_plan_leases"
branch_labels = None
depends_on = None

NAME = 255
VERSION = 64


def upgrade() -> None:
    op.create_table(
        "cep_state",
        sa.Column("rule", sa.String(NAME), primary_key=True),
        sa.Column("entity", sa.String(NAME), primary_key=True),
        sa.Column("version", sa.String(VERSION), nullable=False),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
    )
    with op.batch_alter_table("alarm_history") as batch:
        batch.add_column(
            sa.Column("rule_version", sa.String(VERSION), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("details", sa.JSON, nullable=False, server_default=sa.text("'{}'"))
        )
        batch.add_column(sa.Column("held", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(
            sa.Column("annotations", sa.JSON, nullable=False, server_default=sa.text("'{}'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("alarm_history") as batch:
        batch.drop_column("annotations")
        batch.drop_column("held")
        batch.drop_column("details")
        batch.drop_column("rule_version")
    op.drop_table("cep_state")
