"""Notifiers: adapters that deliver batches of alarm notifications (webhooks in
Alertmanager's payload, Alertmanager's own API, log lines, bus events), and the
dispatcher that routes transitions to them and survives their failures."""
