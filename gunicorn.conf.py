"""Gunicorn picks this file up when started from the repository root.

The real configuration lives in the package, in ``tenantauth.gunicorn_conf``, so that
``tenantauth serve`` behaves the same from an installed wheel (where this file is absent).
"""

from tenantauth.gunicorn_conf import *  # noqa: F403
