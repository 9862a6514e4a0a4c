"""The tables the repositories read and write, as SQLAlchemy Core metadata.

The migrations own the schema; this module mirrors what they create at head (a test
compares the two), so a change here always comes with a new migration."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

NAME = 255
ID = 64
STATE = 32

# SQLite only autoincrements an INTEGER primary key; elsewhere the sequences may outgrow 32 bits.
SEQ = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

hosts = Table(
    "hosts",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("vcpus", BigInteger, nullable=False),
    Column("vcpus_used", BigInteger, nullable=False),
    Column("memory_mb", BigInteger, nullable=False),
    Column("memory_mb_used", BigInteger, nullable=False),
    Column("free_ram_mb", BigInteger, nullable=False),
    Column("local_gb", BigInteger, nullable=False),
    Column("local_gb_used", BigInteger, nullable=False),
    Column("free_disk_gb", BigInteger, nullable=False),
    Column("disk_available_least", BigInteger, nullable=True),
    Column("running_vms", BigInteger, nullable=False),
    Column("current_workload", BigInteger, nullable=False),
    Column("hypervisor_type", String(NAME), nullable=False),
    Column("hypervisor_version", BigInteger, nullable=False),
    Column("cpu_info", Text, nullable=False),
    Column("cpu_allocation_ratio", Double, nullable=False),
    Column("ram_allocation_ratio", Double, nullable=False),
    Column("disk_allocation_ratio", Double, nullable=False),
    Column("reserved_host_cpus", BigInteger, nullable=False),
    Column("reserved_host_memory_mb", BigInteger, nullable=False),
    Column("reserved_host_disk_mb", BigInteger, nullable=False),
    Column("state", String(STATE), nullable=False),
    Column("disabled_reason", Text, nullable=True),
    Column("aggregates", JSON, nullable=False),
    Column("availability_zone", String(NAME), nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("updated_at", Double, nullable=False),
)

instances = Table(
    "instances",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("host", String(NAME), nullable=False),
    Column("flavor_name", String(NAME), nullable=False),
    Column("vcpus", BigInteger, nullable=False),
    Column("memory_mb", BigInteger, nullable=False),
    Column("disk_gb", BigInteger, nullable=False),
    Column("state", String(STATE), nullable=False),
    Column("groups", JSON, nullable=False),
    Column("project", String(NAME), nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("updated_at", Double, nullable=False),
    Index("ix_instances_host", "host"),
)

server_groups = Table(
    "server_groups",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("policy", String(STATE), nullable=False),
)

# `seq` columns keep first-insertion order, which breaks ties the way the
# in-memory reference does (and lets history read newest first).
alarms = Table(
    "alarms",
    metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=True),
    Column("rule", String(NAME), nullable=False),
    Column("entity", String(NAME), nullable=False),
    Column("state", String(STATE), nullable=False),
    Column("since", Double, nullable=False),
    Column("value", Double, nullable=True),
    Column("severity", String(STATE), nullable=False),
    Column("source", String(NAME), nullable=False),
    Column("labels", JSON, nullable=False),
    UniqueConstraint("rule", "entity", name="uq_alarms_rule_entity"),
)

alarm_history = Table(
    "alarm_history",
    metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=True),
    Column("rule", String(NAME), nullable=False),
    Column("entity", String(NAME), nullable=False),
    Column("previous", String(STATE), nullable=False),
    Column("current", String(STATE), nullable=False),
    Column("time", Double, nullable=False),
    Column("value", Double, nullable=True),
    Column("reason", Text, nullable=False),
    Column("labels", JSON, nullable=False),
    Column("severity", String(STATE), nullable=False),
    Column("source", String(NAME), nullable=False),
    Column("rule_version", String(64), nullable=False, server_default=""),
    Column("details", JSON, nullable=False, server_default=text("'{}'")),
    Column("held", Boolean, nullable=False, server_default=false()),
    Column("annotations", JSON, nullable=False, server_default=text("'{}'")),
    Index("ix_alarm_history_rule_entity", "rule", "entity"),
)

audits = Table(
    "audits",
    metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=True),
    Column("id", String(ID), nullable=False),
    Column("goal", String(NAME), nullable=False),
    Column("strategy", String(NAME), nullable=False),
    Column("audit_type", String(STATE), nullable=False),
    Column("scope", JSON, nullable=False),
    Column("parameters", JSON, nullable=False),
    Column("auto_trigger", Boolean, nullable=False),
    Column("state", String(STATE), nullable=False),
    Column("trigger", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    # A scheduled continuous audit's interval (seconds) and run times; NULL otherwise.
    Column("interval_seconds", Double, nullable=True),
    Column("next_run_at", Double, nullable=True),
    Column("last_run_at", Double, nullable=True),
    UniqueConstraint("id", name="uq_audits_id"),
    Index("ix_audits_created_at", "created_at"),
    Index("ix_audits_next_run_at", "next_run_at"),
)

action_plans = Table(
    "action_plans",
    metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=True),
    Column("id", String(ID), nullable=False),
    Column("audit_id", String(ID), nullable=False),
    Column("state", String(STATE), nullable=False),
    Column("efficacy", JSON, nullable=False),
    Column("message", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("limits", JSON, nullable=False),
    UniqueConstraint("id", name="uq_action_plans_id"),
    Index("ix_action_plans_created_at", "created_at"),
    Index("ix_action_plans_state", "state"),
)

actions = Table(
    "actions",
    metadata,
    Column(
        "plan_id",
        String(ID),
        ForeignKey("action_plans.id", ondelete="CASCADE", name="fk_actions_plan"),
        primary_key=True,
    ),
    Column("id", String(ID), primary_key=True),
    Column("ordinal", Integer, nullable=False),
    Column("type", String(STATE), nullable=False),
    Column("parameters", JSON, nullable=False),
    Column("parents", JSON, nullable=False),
    Column("state", String(STATE), nullable=False),
    Column("message", Text, nullable=False),
    Column("explanation", Text, nullable=False),
    Column("started_at", Double, nullable=True),
    Column("finished_at", Double, nullable=True),
)

# Append-only. It points at the plan, not at the action row, so re-saving a
# plan (which rewrites its actions) never loses what was journaled.
action_journal = Table(
    "action_journal",
    metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=True),
    Column(
        "plan_id",
        String(ID),
        ForeignKey("action_plans.id", ondelete="CASCADE", name="fk_action_journal_plan"),
        nullable=False,
    ),
    Column("action_id", String(ID), nullable=False),
    Column("state", String(STATE), nullable=False),
    Column("message", Text, nullable=False),
    Column("time", Double, nullable=False),
    Index("ix_action_journal_plan", "plan_id", "seq"),
)

# One row per leased resource (`host:NAME`, `instance:NAME`); the primary key is what
# makes two plans unable to hold the same one.
leases = Table(
    "leases",
    metadata,
    Column("resource", String(NAME), primary_key=True),
    Column("owner", String(ID), nullable=False),
    Column("acquired_at", Double, nullable=False),
    Index("ix_leases_owner", "owner"),
)

# The CEP engine's per (rule, series) state: alarm state, hold and clear timers,
# N-of-M hits, window; restored at start so a restart neither re-notifies nor clears.
cep_state = Table(
    "cep_state",
    metadata,
    Column("rule", String(NAME), primary_key=True),
    Column("entity", String(NAME), primary_key=True),
    Column("version", String(64), nullable=False),
    Column("state", JSON, nullable=False),
    Column("updated_at", Double, nullable=False),
)

# One row per instance evacuated for maintenance: the host it left and the audit and
# plan that moved it. The primary key keeps one mark per instance, the latest.
evacuation_marks = Table(
    "evacuation_marks",
    metadata,
    Column("instance", String(NAME), primary_key=True),
    Column("host", String(NAME), nullable=False),
    Column("audit_id", String(ID), nullable=False),
    Column("plan_id", String(ID), nullable=False),
    Column("at", Double, nullable=False),
    Index("ix_evacuation_marks_host", "host"),
)
