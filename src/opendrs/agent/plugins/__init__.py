"""Built-in metric plugins, each also declared as an `opendrs.agent.plugins`
entry point (watermark alarms, publisher)."""
