"""gunicorn settings used by ``tenantauth serve`` (``-c python:tenantauth.gunicorn_conf``).

Bind address and worker count come from the command line. Connection pools open lazily in
each worker after fork (never in the master), so no socket is shared between processes.
"""

import os

worker_class = "gthread"
# Threads let a worker keep serving while one request waits on a slow dependency.
threads = int(os.environ.get("TENANTAUTH_THREADS", "4"))
timeout = 30
# SIGTERM: stop accepting, finish in-flight requests for up to this long (rolling restarts).
graceful_timeout = 20
keepalive = 5
# Heartbeat files on tmpfs: works with a read-only root filesystem and never blocks on disk.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: PTH112, S108
accesslog = os.environ.get("TENANTAUTH_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("TENANTAUTH_LOG_LEVEL", "info").lower()
# Reject oversized request lines and headers before Flask sees them.
limit_request_line = 8190
limit_request_fields = 50
limit_request_field_size = 8190
# gunicorn 27's control socket lives under $HOME, which is read-only in our containers, and
# nothing here uses it.
control_socket_disable = True
