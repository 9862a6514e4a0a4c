"""Rule files: the YAML language of CEP rules, loaded into cep rules with errors
naming file, line and field, and the promtool-like unit tests of rules."""
