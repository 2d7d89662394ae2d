"""Metrics and structured logs (issue 13): adapters composed by ``app.py`` and gunicorn's
hooks; nothing in the domain, the API or the other adapters imports this package."""
