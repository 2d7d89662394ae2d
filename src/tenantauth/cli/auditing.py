"""Audit entries for admin commands: the CLI twin of api/admin/auditing.py.

Every command that changes something runs its use case through ``run_audited``, which
appends one entry per invocation with the same action names as the HTTP API
(``tenant.rotate``, ``user.update`` ...), actor ``cli:<OS user>``, and outcome ``success`` or
the HTTP status the API answers for the same error (``404``, ``409`` ...), so one filter finds
both planes' entries. The entry goes through ``domain.admin.audit.record_action``, the one path the
API hook uses too: if it cannot be written, the command still reports what it did, logs the
entry at ERROR and says so on stderr.
"""

from __future__ import annotations

import getpass
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import click

from tenantauth.api.statuses import status_for
from tenantauth.cli.common import fail
from tenantauth.domain.admin import audit
from tenantauth.domain.admin.admin_models import CLI_ACTOR, AuditEvent
from tenantauth.domain.services import Services
from tenantauth.errors import TenantAuthError

T = TypeVar("T")
#: Characters kept from the OS user name; others become "?" (the actor is shown in tables).
_UNSAFE_USER_CHARS = re.compile(r"[^A-Za-z0-9._@+-]")
_MAX_USER_LENGTH = 64


@dataclass(frozen=True, slots=True)
class Action:
    """What a command does, for its audit entry: the action name, its tenant and target."""

    name: str
    tenant_id: str | None = None
    target: str | None = None


def run_audited(
    svc: Services,
    action: Action,
    call: Callable[[], T],
    described: Callable[[T], Action] | None = None,
) -> T:
    """Run a use case and append its audit entry, whatever the outcome.

    ``described`` names the entry from the result when only the result knows it (the id of
    a client just made). Returns the use case's result. On a domain error, records its HTTP
    status and exits with status 1 (``fail``); any other exception is recorded as ``500``
    and propagates, as the API's generic 500 would be.
    """
    try:
        result = call()
    except TenantAuthError as exc:
        record_command(svc, action, status_for(exc))
        fail(exc.detail)
    except Exception:
        record_command(svc, action, 500)
        raise
    record_command(svc, described(result) if described else action, 200)
    return result


def record_command(svc: Services, action: Action, status: int) -> None:
    """Append the entry of one command that ended with (the equivalent of) HTTP ``status``.

    Never raises: when the entry cannot be written it is logged and a warning is printed.
    """
    event = AuditEvent(
        actor=cli_actor(),
        tenant_id=action.tenant_id,
        action=action.name,
        target=action.target,
        request_id=f"cli-{uuid.uuid4().hex}",
        outcome=audit.outcome(status),
    )
    if audit.record_action(svc, event) is None:
        click.echo("warning: the audit entry of this command was NOT recorded", err=True)


def cli_actor() -> str:
    """Return ``cli:<OS user>``, or ``cli`` when the user cannot be named.

    Informational, not authentication: ``getpass.getuser`` reads ``$LOGNAME``/``$USER``
    first, and whoever runs the command holds the master key anyway.
    """
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login variable and no passwd entry (e.g. a bare uid)
        return CLI_ACTOR
    return f"{CLI_ACTOR}:{_UNSAFE_USER_CHARS.sub('?', user)[:_MAX_USER_LENGTH]}"
