"""The HTTP API of opendrs: a FastAPI app over the repository ports (see app.create_app)."""
