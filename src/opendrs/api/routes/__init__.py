"""One router per resource of the v1 API; each reads the repositories it is given."""
