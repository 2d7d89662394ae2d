"""Dependency audit for `make lint`: pip-audit over the installed environment.

Fails (exit 1) on any known vulnerability. Packages pip-audit could not look up (the
vulnerability service unreachable, or a mirror that serves no vulnerability data) are
never a silent pass: they are listed with a loud banner, and fail the run too when
TENANTAUTH_AUDIT=required (set it where the service is known to be reachable).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

#: Our own distributions (installed editable, so pip-audit skips them; not on PyPI).
OURS = frozenset({"tenantauth", "tenantauth-client"})
ARGV = ["-m", "pip_audit", "-s", "pypi", "--skip-editable", "--progress-spinner", "off"]


def main() -> int:
    """Run pip-audit; return the exit status described in the module docstring."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and a fixed argv
        [sys.executable, *ARGV, "--format", "json"], capture_output=True, text=True, check=False
    )
    try:
        report = json.loads(done.stdout)
    except ValueError:
        print(f"pip-audit did not run:\n{done.stderr}", file=sys.stderr)  # noqa: T201
        return 1
    deps = report.get("dependencies", [])
    vulnerable = [d for d in deps if d.get("vulns")]
    unaudited = [d["name"] for d in deps if "skip_reason" in d and d["name"] not in OURS]
    for dep in vulnerable:
        ids = ", ".join(v["id"] for v in dep["vulns"])
        print(f"VULNERABLE {dep['name']} {dep['version']}: {ids}")  # noqa: T201
    if unaudited:
        print(  # noqa: T201
            f"*** DEPENDENCY AUDIT INCOMPLETE: {len(unaudited)} of {len(deps)} packages could "
            f"not be checked (vulnerability service unreachable?): {', '.join(unaudited[:8])}"
            f"{' ...' if len(unaudited) > 8 else ''} ***"
        )
    if vulnerable or (unaudited and os.environ.get("TENANTAUTH_AUDIT") == "required"):
        return 1
    checked = sum("skip_reason" not in d for d in deps)
    print(f"pip-audit: {checked} packages checked, none vulnerable")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
