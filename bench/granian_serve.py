"""Serve a WSGI app under granian as ``tenantauth serve --server granian`` does, for
bench/servers.py.

Usage: ``python bench/granian_serve.py [--app MODULE:ATTR] --port P --workers N
--blocking-threads T [--backpressure B]``. The environment must already name a migrated
database, as ``tenantauth serve`` leaves it before it execs the server. Everything is in
``tenantauth.granian_conf`` (this was its first draft); this keeps the bench's command line.
"""

from __future__ import annotations

from tenantauth.granian_conf import main

if __name__ == "__main__":
    main()
