"""``tenantauth token …``: issue, revoke and verify access tokens."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

import click

from tenantauth.cli.auditing import Action, run_audited
from tenantauth.cli.common import fail, json_option, parse_claim, run, services, table
from tenantauth.cli.groups import token
from tenantauth.domain import revocations
from tenantauth.domain.admin import audit
from tenantauth.domain.tokens import TokenRequest, issue_token
from tenantauth.errors import InvalidTokenError, TenantAuthError


@token.command("issue")
@click.argument("tenant_id")
@click.option("--sub", required=True, help="Subject (user or service id).")
@click.option("--ttl", type=click.IntRange(1), help="Lifetime in seconds (default: tenant's).")
@click.option("--aud", multiple=True, help="Audience; repeat for several.")
@click.option("--scope", help="Space-separated scopes.")
@click.option(
    "--claim", "claims", multiple=True, metavar="NAME=JSON", help="Custom claim; repeatable."
)
@json_option
def token_issue(
    *,
    tenant_id: str,
    sub: str,
    ttl: int | None,
    aud: Sequence[str],
    scope: str | None,
    claims: Sequence[str],
    as_json: bool,
) -> None:
    """Mint an access token for SUB of TENANT_ID and print it."""
    extra = dict(parse_claim(c) for c in claims)
    audience: str | list[str] | None = (aud[0] if len(aud) == 1 else list(aud)) if aud else None
    with services() as svc:
        issued = run(
            lambda: issue_token(
                svc.storage,
                svc.keyring,
                svc.tokens,
                svc.clock,
                TokenRequest(tenant_id, sub, ttl=ttl, audience=audience, scope=scope, claims=extra),
            )
        )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "access_token": issued.access_token,
                    "token_type": "Bearer",
                    "expires_in": issued.expires_in,
                }
            )
        )
    else:
        click.echo(issued.access_token)
        click.echo(f"expires in {issued.expires_in} s", err=True)


@token.command("revoke")
@click.argument("token_text", metavar="TOKEN")
@json_option
def token_revoke(token_text: str, as_json: bool) -> None:
    """Revoke one access token (by its jti, until it expires). '-' reads it from stdin.

    Exit status 0 if it was revoked, 1 if it was not a valid token (nothing to revoke).
    """
    if token_text == "-":  # noqa: S105 - "-" means stdin, not a password
        token_text = sys.stdin.readline().strip()
    with services() as svc:
        revoked = run_audited(
            svc,
            Action("token.revoke"),
            lambda: revocations.revoke_token(svc, token_text),
            lambda done: _revoke_action(token_text) if done else Action("token.revoke"),
        )
    if as_json:
        click.echo(json.dumps({"revoked": revoked}))
    else:
        click.echo(
            "revoked: every verifier now rejects this token"
            if revoked
            else "not revoked: the token is not valid (nothing to revoke)"
        )
    sys.exit(0 if revoked else 1)


def _revoke_action(token_text: str) -> Action:
    """Return the audit action of a revoked token: its tenant, and its jti as the target."""
    ref = audit.revoked_token_ref(token_text)  # sound: the revocation verified it
    return Action("token.revoke", *ref) if ref else Action("token.revoke")


@token.command("verify")
@click.argument("token_text", metavar="TOKEN")
@click.option("--audience", help="Require this audience.")
@json_option
def token_verify(token_text: str, audience: str | None, as_json: bool) -> None:
    """Verify TOKEN ('-' reads it from stdin). Exit status 0 if valid, 1 if not."""
    if token_text == "-":  # noqa: S105 - "-" means stdin, not a password
        token_text = sys.stdin.readline().strip()
    with services() as svc:
        try:
            verdict = svc.verifier.verify(token_text, audience)
        except InvalidTokenError as exc:
            if as_json:
                click.echo(json.dumps({"active": False}))
            else:
                click.echo(f"INVALID: {exc.reason}")
            sys.exit(1)
        except TenantAuthError as exc:
            fail(exc.detail)
    if as_json:
        click.echo(json.dumps({"active": True, "claims": verdict.claims}))
        return
    click.echo(f"VALID: tenant {verdict.tenant_id}, subject {verdict.subject}")
    table(("claim", "value"), [(k, json.dumps(v)) for k, v in verdict.claims.items()])
