"""WSGI entry point for gunicorn: ``gunicorn tenantauth.wsgi:app``."""

from tenantauth.app import create_app

app = create_app()
