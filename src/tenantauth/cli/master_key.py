"""``tenantauth master-key …``: generate a master key, re-wrap tenant secrets, show progress."""

from __future__ import annotations

import json
import uuid
from typing import Any

import click

from tenantauth.cli.auditing import Action, cli_actor, record_command
from tenantauth.cli.common import json_option, run, services, table
from tenantauth.cli.groups import main
from tenantauth.crypto.envelope import generate_master_key
from tenantauth.domain.admin import audit, master_keys
from tenantauth.domain.admin.admin_models import AuditEvent
from tenantauth.domain.admin.master_keys import KeyStatus, RotationReport
from tenantauth.domain.services import Services

PROCEDURE = """\b
Rotating the master key without downtime:
  1. tenantauth master-key generate      (store the new key in your secret manager)
  2. on EVERY replica: TENANTAUTH_MASTER_KEY=<new>, TENANTAUTH_MASTER_KEYS_OLD=<old>;
     roll them out (each replica then seals with the new key and still reads the old one)
  3. tenantauth master-key rotate        (re-wraps each tenant secret; safe to re-run)
  4. tenantauth master-key status        (no tenant secret may remain under the old id)
  5. drop the old key from TENANTAUTH_MASTER_KEYS_OLD, but only once every client secret
     was used or rotated since step 2 and REFRESH_TOKEN_TTL has passed since step 2: they
     are keyed hashes, moved to the new key only when next used. Admin API keys are not
     moved: create new ones. See README, "Master-key rotation"."""


@main.group(
    "master-key", help="Rotate the master key that protects tenant secrets.\n\n" + PROCEDURE
)
def master_key() -> None:
    """The ``master-key`` group (its help is the procedure)."""


@master_key.command("generate")
def key_generate() -> None:
    """Print a new random master key (base64 of 32 bytes) and nothing else.

    It is not stored anywhere: put it in your secret manager as TENANTAUTH_MASTER_KEY.
    """
    click.echo(generate_master_key())


@master_key.command(
    "rotate",
    help="Re-wrap every tenant secret under TENANTAUTH_MASTER_KEY.\n\n"
    "Each tenant is one short transaction under the same fence as a tenant rotation, so the "
    "service keeps running; tokens stay valid (the secrets do not change). Exits 1 if any "
    "tenant failed; re-running continues where it is needed.\n\n" + PROCEDURE,
)
@click.option(
    "--batch",
    type=click.IntRange(1, 500),
    default=master_keys.DEFAULT_BATCH,
    show_default=True,
    help="Tenants per listing page; a progress line is printed after each.",
)
@json_option
def key_rotate(batch: int, as_json: bool) -> None:
    """The ``master-key rotate`` command (help above)."""

    def progress(report: RotationReport) -> None:
        click.echo(
            f"{report.seen} tenant(s) seen: {report.rewrapped} re-wrapped, "
            f"{report.already_current} already current, {len(report.failed)} failed",
            err=True,
        )

    with services() as svc:
        report: RotationReport = run(lambda: master_keys.rotate(svc, progress, batch=batch))
        _record(svc, report)
    _show_rotation(report, as_json)
    if report.failed:
        raise SystemExit(1)


@master_key.command("status")
@json_option
def key_status(as_json: bool) -> None:
    """Count tenant secrets under each master key id, and show which ids are configured."""
    with services() as svc:
        found: KeyStatus = run(lambda: master_keys.status(svc))
    if as_json:
        click.echo(json.dumps(_status_dict(found)))
        return
    ids = [found.current_id, *found.older_ids, *found.unknown]
    rows = [(k, _role(found, k), str(found.secrets_by_key.get(k, 0))) for k in ids]
    table(("key_id", "role", "tenant_secrets"), rows)
    if found.unknown:
        click.echo("tenants under a key that is not configured cannot be verified (503)", err=True)
    click.echo(f"{found.pending} tenant secret(s) not under the current key", err=True)
    click.echo(master_keys.HASHED_CREDENTIALS_NOTE, err=True)


def _show_rotation(report: RotationReport, as_json: bool) -> None:
    failed = [{"tenant_id": f.tenant_id, "reason": f.reason} for f in report.failed]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "current_id": report.current_id,
                    "rewrapped": report.rewrapped,
                    "already_current": report.already_current,
                    "failed": failed,
                }
            )
        )
    else:
        click.echo(
            f"master key {report.current_id}: {report.rewrapped} re-wrapped, "
            f"{report.already_current} already current, {len(failed)} failed"
        )
    for failure in failed:
        click.echo(f"error: tenant {failure['tenant_id']}: {failure['reason']}", err=True)


def _status_dict(found: KeyStatus) -> dict[str, Any]:
    return {
        "current_id": found.current_id,
        "older_ids": found.older_ids,
        "tenant_secrets": found.secrets_by_key,
        "pending": found.pending,
        "unknown": found.unknown,
        "note": master_keys.HASHED_CREDENTIALS_NOTE,
    }


def _role(found: KeyStatus, key_id: str) -> str:
    if key_id == found.current_id:
        return "current"
    return "older" if key_id in found.older_ids else "NOT CONFIGURED"


def _record(svc: Services, report: RotationReport) -> None:
    """Audit the run like every other command (``cli.auditing``; a tenant that could not be
    re-wrapped is the 503 the API answers for it); after a complete run, checkpoint the audit
    chain under the new key, so that the entries the old key keyed still verify once it is
    dropped (domain/admin/audit.py, ``checkpoint``)."""
    action = Action("master_key.rotate", None, report.current_id)
    record_command(svc, action, 503 if report.failed else 200)
    if not report.failed:
        request_id = f"cli-{uuid.uuid4().hex}"
        mark = AuditEvent(cli_actor(), None, audit.CHECKPOINT_ACTION, None, request_id, "success")
        entry = run(lambda: audit.checkpoint(svc, mark))
        click.echo(f"audit chain checkpointed at entry {entry.seq} under the new key", err=True)
