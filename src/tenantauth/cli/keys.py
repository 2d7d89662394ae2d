"""``tenantauth keys …``: scheduled key rollover (policies, and the job that carries them out).

``roll-due`` is what a Kubernetes CronJob (k8s/base/key-rollover-cronjob.yaml) or the
compose ``key-rollover`` service runs: idempotent, safe on several replicas at once
(domain/key_schedule.py).
"""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from tenantauth.cli.auditing import Action, record_command, run_audited
from tenantauth.cli.common import fmt, json_option, run, services, table
from tenantauth.cli.groups import main
from tenantauth.domain import key_schedule
from tenantauth.domain.key_rollover import MAX_WINDOW
from tenantauth.domain.key_schedule import RollReport
from tenantauth.domain.models import KeyPolicy

#: The audit action of each step roll-due takes (as the API names the same changes).
_STEP_ACTIONS = {
    "published": "tenant.publish_next",
    "rolled": "tenant.rollover",
    "retired": "tenant.retire_keys",
    "failed": "tenant.rollover",
}


@main.group()
def keys() -> None:
    """Scheduled key rollover: per-tenant policies, and `roll-due`, which carries them out
    (run it from cron, a Kubernetes CronJob or the compose `key-rollover` service)."""


@keys.command("policy")
@click.argument("tenant_id")
@click.option(
    "--every",
    type=click.IntRange(key_schedule.MIN_EVERY),
    help="Roll the signing key over when it is this many seconds old (at least a day).",
)
@click.option(
    "--publish-ahead",
    type=click.IntRange(0),
    help="Publish the next key this many seconds before it signs (less than --every; at "
    "least the JWKS max-age, 300, so verifiers caching the JWKS hold it in time).",
)
@click.option(
    "--grace",
    type=click.IntRange(0, MAX_WINDOW),
    help="Seconds the previous key keeps verifying (default: the tenant's max token TTL plus "
    "the clock leeway).",
)
@click.option("--clear", is_flag=True, help="Remove the tenant's policy.")
@json_option
def key_policy(
    *,
    tenant_id: str,
    every: int | None,
    publish_ahead: int | None,
    grace: int | None,
    clear: bool,
    as_json: bool,
) -> None:
    """Show TENANT_ID's rollover policy; with --every and --publish-ahead, set it; with
    --clear, remove it."""
    setting = every is not None or publish_ahead is not None or grace is not None
    if setting and clear:
        raise click.UsageError("--clear takes no other option")
    if setting and (every is None or publish_ahead is None):
        raise click.UsageError("setting a policy needs --every and --publish-ahead")
    with services() as svc:
        if clear:
            found = run_audited(
                svc,
                Action("tenant.key_policy", tenant_id),
                lambda: key_schedule.clear_policy(svc, tenant_id),
            )
            click.echo(f"{tenant_id}: policy {'removed' if found else 'was not set'}", err=True)
            return
        if setting:
            assert every is not None and publish_ahead is not None  # noqa: S101 - checked
            policy = KeyPolicy(tenant_id, every, publish_ahead, grace)
            run_audited(
                svc,
                Action("tenant.key_policy", tenant_id),
                lambda: key_schedule.set_policy(svc, policy),
            )
        current = run(lambda: key_schedule.get_policy(svc, tenant_id))
    _show_policy(tenant_id, current, as_json)


def _show_policy(tenant_id: str, policy: KeyPolicy | None, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(asdict(policy) if policy else None))
        return
    if policy is None:
        click.echo(f"{tenant_id}: no rollover policy (keys change only when asked)", err=True)
        return
    rows = [(k, fmt(v)) for k, v in asdict(policy).items()]
    table(("field", "value"), rows)


@keys.command("roll-due")
@click.option(
    "--batch",
    type=click.IntRange(1, 500),
    default=key_schedule.DEFAULT_BATCH,
    show_default=True,
    help="Policies per page; a progress line is printed after each.",
)
@json_option
def roll_due(batch: int, as_json: bool) -> None:
    """Carry out every tenant's rollover policy: publish next keys that are due, roll over
    to those whose time has come, drop retiring keys past their grace. Idempotent; safe to
    run on several replicas at once. Prints what it did; exits 1 if a tenant failed."""

    def progress(report: RollReport) -> None:
        click.echo(f"{len(report.steps)} step(s), {report.idle} tenant(s) idle so far", err=True)

    with services() as svc:
        report: RollReport = run(lambda: key_schedule.roll_due(svc, batch=batch, progress=progress))
        for step in report.steps:
            if step.action in _STEP_ACTIONS:
                status = 503 if step.action == "failed" else 200
                record_command(svc, Action(_STEP_ACTIONS[step.action], step.tenant_id), status)
    failed = [s for s in report.steps if s.action == "failed"]
    if as_json:
        steps = [asdict(s) for s in report.steps]
        click.echo(json.dumps({"steps": steps, "idle": report.idle, "failed": len(failed)}))
    else:
        table(
            ("tenant", "action", "detail"),
            [(s.tenant_id, s.action, s.detail) for s in report.steps],
        )
        click.echo(
            f"{len(report.steps)} step(s); {report.idle} scheduled tenant(s) had nothing due; "
            f"{len(failed)} failed",
            err=True,
        )
    if failed:
        raise SystemExit(1)
