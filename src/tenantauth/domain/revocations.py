"""Revoking one subject's tokens ("log out everywhere") or one token (by its jti).

Both follow one rule: write the database row, then the cache mark, then commit, then the mark
again (the "seal", for a cache that restarted in between: docs/design.md, "Cache
incarnations"). Once the call returns, every verifier sees the mark (warm cache) or the
committed row (miss, or cache down). If the first cache write fails nothing commits (503); if
the commit fails after it, the mark over-revokes until a retry — the safe direction; if the
seal fails, the revocation is committed and the call answers 503 until a repeat confirms it.
Marks only ever grow (versions rise, jtis are only added), so a filler holding an older
snapshot cannot undo one (docs/design.md).
"""

from __future__ import annotations

from tenantauth.domain.models import SubjectRevocation
from tenantauth.domain.services import Services
from tenantauth.domain.tenants import confirm, require_live, require_tenant_id
from tenantauth.domain.tokens import CONTROL_CHARACTERS, MAX_SUBJECT_LENGTH
from tenantauth.domain.verifying.keys import SKEW_MARGIN
from tenantauth.errors import InvalidRequestError, InvalidTokenError


def revoke_subject(svc: Services, tenant_id: str, subject: str) -> SubjectRevocation:
    """Revoke every access and refresh token of ``subject`` in the tenant, issued until now.

    Tokens minted afterwards carry the new version (claim ``uv``) and verify. Returns the
    revocation. Raises ``NotFoundError`` for an unknown tenant, ``InvalidRequestError`` for a
    malformed subject, ``DependencyUnavailableError`` (nothing changed, or retry to be sure).
    """
    require_tenant_id(tenant_id)
    if not 1 <= len(subject) <= MAX_SUBJECT_LENGTH or CONTROL_CHARACTERS.search(subject):
        raise InvalidRequestError(
            f"the subject must be 1 to {MAX_SUBJECT_LENGTH} printable characters"
        )
    now = int(svc.clock.now())
    with svc.storage.transaction() as tx:
        require_live(tx.get_tenant(tenant_id), tenant_id)
        version = tx.revocations.bump_subject(tenant_id, subject, now)
        tx.refresh_tokens.revoke_user(tenant_id, subject, now)
        ttl = svc.keys.revocation_horizon() + SKEW_MARGIN
        svc.cache.revoke_subject(tenant_id, subject, version, ttl)
    confirm(svc, lambda: svc.cache.revoke_subject(tenant_id, subject, version, ttl), tenant_id)
    return SubjectRevocation(tenant_id, subject, version, now)


def revoke_token(svc: Services, token: str, tenant_id: str | None = None) -> bool:
    """Denylist a valid access token's ``jti`` until its ``exp``.

    Returns False when the token does not verify, or belongs to another tenant than
    ``tenant_id`` (RFC 7009 §2.2: nothing to revoke, and no error either), True once it is
    revoked. Raises ``DependencyUnavailableError``.
    """
    try:
        verdict = svc.verifier.verify(token)
    except InvalidTokenError:
        return False
    if tenant_id is not None and verdict.tenant_id != tenant_id:
        return False
    claims = verdict.claims
    exp, jti = int(claims["exp"]), str(claims["jti"])
    now = int(svc.clock.now())
    ttl = exp + svc.tokens.leeway - now + SKEW_MARGIN
    with svc.storage.transaction() as tx:
        tx.revocations.revoke_jti(verdict.tenant_id, jti, exp, now)
        svc.cache.revoke_jti(verdict.tenant_id, jti, ttl)
    confirm(svc, lambda: svc.cache.revoke_jti(verdict.tenant_id, jti, ttl), verdict.tenant_id)
    return True
