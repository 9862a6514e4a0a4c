"""The initial schema: cluster model, alarms, audits, action plans and their journal.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

NAME = 255
ID = 64
STATE = 32


def _seq() -> sa.Column[int]:
    return sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    )


def upgrade() -> None:
    op.create_table(
        "hosts",
        sa.Column("name", sa.String(NAME), primary_key=True),
        sa.Column("vcpus", sa.BigInteger, nullable=False),
        sa.Column("vcpus_used", sa.BigInteger, nullable=False),
        sa.Column("memory_mb", sa.BigInteger, nullable=False),
        sa.Column("memory_mb_used", sa.BigInteger, nullable=False),
        sa.Column("free_ram_mb", sa.BigInteger, nullable=False),
        sa.Column("local_gb", sa.BigInteger, nullable=False),
        sa.Column("local_gb_used", sa.BigInteger, nullable=False),
        sa.Column("free_disk_gb", sa.BigInteger, nullable=False),
        sa.Column("disk_available_least", sa.BigInteger, nullable=True),
        sa.Column("running_vms", sa.BigInteger, nullable=False),
        sa.Column("current_workload", sa.BigInteger, nullable=False),
        sa.Column("hypervisor_type", sa.String(NAME), nullable=False),
        sa.Column("hypervisor_version", sa.BigInteger, nullable=False),
        sa.Column("cpu_info", sa.Text, nullable=False),
        sa.Column("cpu_allocation_ratio", sa.Double, nullable=False),
        sa.Column("ram_allocation_ratio", sa.Double, nullable=False),
        sa.Column("disk_allocation_ratio", sa.Double, nullable=False),
        sa.Column("reserved_host_cpus", sa.BigInteger, nullable=False),
        sa.Column("reserved_host_memory_mb", sa.BigInteger, nullable=False),
        sa.Column("reserved_host_disk_mb", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(STATE), nullable=False),
        sa.Column("disabled_reason", sa.Text, nullable=True),
        sa.Column("aggregates", sa.JSON, nullable=False),
        sa.Column("availability_zone", sa.String(NAME), nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
    )
    op.create_table(
        "instances",
        sa.Column("name", sa.String(NAME), primary_key=True),
        sa.Column("host", sa.String(NAME), nullable=False),
        sa.Column("flavor_name", sa.String(NAME), nullable=False),
        sa.Column("vcpus", sa.BigInteger, nullable=False),
        sa.Column("memory_mb", sa.BigInteger, nullable=False),
        sa.Column("disk_gb", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(STATE), nullable=False),
        sa.Column("groups", sa.JSON, nullable=False),
        sa.Column("project", sa.String(NAME), nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
    )
    op.create_index("ix_instances_host", "instances", ["host"])
    op.create_table(
        "server_groups",
        sa.Column("name", sa.String(NAME), primary_key=True),
        sa.Column("policy", sa.String(STATE), nullable=False),
    )
    op.create_table(
        "alarms",
        _seq(),
        sa.Column("rule", sa.String(NAME), nullable=False),
        sa.Column("entity", sa.String(NAME), nullable=False),
        sa.Column("state", sa.String(STATE), nullable=False),
        sa.Column("since", sa.Double, nullable=False),
        sa.Column("value", sa.Double, nullable=True),
        sa.Column("severity", sa.String(STATE), nullable=False),
        sa.Column("source", sa.String(NAME), nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.UniqueConstraint("rule", "entity", name="uq_alarms_rule_entity"),
    )
    op.create_table(
        "alarm_history",
        _seq(),
        sa.Column("rule", sa.String(NAME), nullable=False),
        sa.Column("entity", sa.String(NAME), nullable=False),
        sa.Column("previous", sa.String(STATE), nullable=False),
        sa.Column("current", sa.String(STATE), nullable=False),
        sa.Column("time", sa.Double, nullable=False),
        sa.Column("value", sa.Double, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("severity", sa.String(STATE), nullable=False),
        sa.Column("source", sa.String(NAME), nullable=False),
    )
    op.create_index("ix_alarm_history_rule_entity", "alarm_history", ["rule", "entity"])
    op.create_table(
        "audits",
        _seq(),
        sa.Column("id", sa.String(ID), nullable=False),
        sa.Column("goal", sa.String(NAME), nullable=False),
        sa.Column("strategy", sa.String(NAME), nullable=False),
        sa.Column("audit_type", sa.String(STATE), nullable=False),
        sa.Column("scope", sa.JSON, nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("auto_trigger", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(STATE), nullable=False),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.UniqueConstraint("id", name="uq_audits_id"),
    )
    op.create_index("ix_audits_created_at", "audits", ["created_at"])
    op.create_table(
        "action_plans",
        _seq(),
        sa.Column("id", sa.String(ID), nullable=False),
        sa.Column("audit_id", sa.String(ID), nullable=False),
        sa.Column("state", sa.String(STATE), nullable=False),
        sa.Column("efficacy", sa.JSON, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("limits", sa.JSON, nullable=False),
        sa.UniqueConstraint("id", name="uq_action_plans_id"),
    )
    op.create_index("ix_action_plans_created_at", "action_plans", ["created_at"])
    op.create_index("ix_action_plans_state", "action_plans", ["state"])
    op.create_table(
        "actions",
        sa.Column(
            "plan_id",
            sa.String(ID),
            sa.ForeignKey("action_plans.id", ondelete="CASCADE", name="fk_actions_plan"),
            primary_key=True,
        ),
        sa.Column("id", sa.String(ID), primary_key=True),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("type", sa.String(STATE), nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("parents", sa.JSON, nullable=False),
        sa.Column("state", sa.String(STATE), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("explanation", sa.Text, nullable=False),
        sa.Column("started_at", sa.Double, nullable=True),
        sa.Column("finished_at", sa.Double, nullable=True),
    )
    op.create_table(
        "action_journal",
        _seq(),
        sa.Column(
            "plan_id",
            sa.String(ID),
            sa.ForeignKey("action_plans.id", ondelete="CASCADE", name="fk_action_journal_plan"),
            nullable=False,
        ),
        sa.Column("action_id", sa.String(ID), nullable=False),
        sa.Column("state", sa.String(STATE), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("time", sa.Double, nullable=False),
    )
    op.create_index("ix_action_journal_plan", "action_journal", ["plan_id", "seq"])


def downgrade() -> None:
    for table in (
        "action_journal",
        "actions",
        "action_plans",
        "audits",
        "alarm_history",
        "alarms",
        "server_groups",
        "instances",
        "hosts",
    ):
        op.drop_table(table)
