"""The web dashboard: a single hand-written page, served by the API, that polls it."""
