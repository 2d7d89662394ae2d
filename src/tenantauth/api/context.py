"""The one accessor views use to reach the domain (built by ``create_app``)."""

from __future__ import annotations

from flask import current_app

from tenantauth.domain.services import Services
from tenantauth.settings import Settings

EXTENSION = "tenantauth"


def services() -> Services:
    """Return the current app's Services bundle."""
    return current_app.extensions[EXTENSION]["services"]  # type: ignore[no-any-return]


def settings() -> Settings:
    """Return the current app's Settings."""
    return current_app.extensions[EXTENSION]["settings"]  # type: ignore[no-any-return]
