"""The SQL store: the cluster model, alarms, audits and the plan journal in SQLite or
PostgreSQL, behind the repository ports of opendrs.domain.ports."""
