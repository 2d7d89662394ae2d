"""Scheduled rollover (issue 15): per-tenant policies, carried out by ``roll_due``
(``tenantauth keys roll-due``, run by a Kubernetes CronJob or a one-shot compose service).

For a tenant with a policy ``(every, publish_ahead, grace)`` whose signing key began signing
at ``rotated_at`` (creation, rotation or the last rollover):

1. retiring keys whose window closed are removed (tidying: the clock refuses them already);
2. a published next key whose time has come (``at`` ≤ now) is promoted by a rollover with
   ``grace``;
3. otherwise, once ``now ≥ rotated_at + every − publish_ahead`` and no next key is published,
   one is, signing from ``max(rotated_at + every, now + publish_ahead)``: offline verifiers
   get at least ``publish_ahead`` to fetch it, even when the job ran late.

Each step is an ordinary change (fence protocol, acknowledged), so running the job twice, or
on several replicas at once, does the work once: a replica that finds the step done by
another (a ``ConflictError`` from the change's own checks, made under the row lock) counts the
tenant as already done. Suspended tenants are skipped (they sign nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tenantauth.domain import key_rollover
from tenantauth.domain.models import KeyPolicy, KeyState, TenantStatus
from tenantauth.domain.services import Services
from tenantauth.domain.tenants import require_live, require_tenant_id
from tenantauth.errors import InvalidRequestError, TenantAuthError

DEFAULT_BATCH = 100
#: A key rolls over at most this often (a day): shorter would churn every verifier's JWKS
#: cache (max-age 300 s) for no gain.
MIN_EVERY = 86_400


def set_policy(svc: Services, policy: KeyPolicy) -> KeyPolicy:
    """Store ``policy`` for its live tenant (replacing any). Raises ``NotFoundError``;
    ``InvalidRequestError`` unless ``MIN_EVERY ≤ every ≤ 10 years``, ``0 ≤ publish_ahead <
    every`` and ``0 ≤ grace ≤ key_rollover.MAX_WINDOW``."""
    if not MIN_EVERY <= policy.every <= 10 * 366 * 86_400:
        raise InvalidRequestError(f"every must be between {MIN_EVERY} s (a day) and 10 years")
    if not 0 <= policy.publish_ahead < policy.every:
        raise InvalidRequestError("publish_ahead must be at least 0 and less than every")
    if policy.grace is not None and not 0 <= policy.grace <= key_rollover.MAX_WINDOW:
        raise InvalidRequestError(f"grace must be between 0 and {key_rollover.MAX_WINDOW} s")
    require_tenant_id(policy.tenant_id)
    now = datetime.fromtimestamp(svc.clock.now(), UTC)
    with svc.storage.transaction() as tx:
        require_live(tx.get_tenant(policy.tenant_id), policy.tenant_id)
        tx.key_policies.put(policy, now)
    return policy


def get_policy(svc: Services, tenant_id: str) -> KeyPolicy | None:
    """The live tenant's policy, or None. Raises ``NotFoundError``."""
    require_tenant_id(tenant_id)
    with svc.storage.transaction() as tx:
        require_live(tx.get_tenant(tenant_id), tenant_id)
        return tx.key_policies.get(tenant_id)


def clear_policy(svc: Services, tenant_id: str) -> bool:
    """Remove the live tenant's policy; return whether there was one. Raises
    ``NotFoundError``."""
    require_tenant_id(tenant_id)
    with svc.storage.transaction() as tx:
        require_live(tx.get_tenant(tenant_id), tenant_id)
        return tx.key_policies.delete_all(tenant_id) > 0


@dataclass(frozen=True, slots=True)
class Step:
    """What ``roll_due`` did for one tenant: ``action`` is ``published``, ``rolled``,
    ``retired``, ``done-elsewhere`` or ``failed``; ``detail`` says which key or why."""

    tenant_id: str
    action: str
    detail: str


@dataclass
class RollReport:
    """A ``roll_due`` run: the steps taken and how many scheduled tenants had nothing due."""

    steps: list[Step] = field(default_factory=list)
    idle: int = 0


def roll_due(
    svc: Services,
    *,
    batch: int = DEFAULT_BATCH,
    progress: Callable[[RollReport], None] | None = None,
) -> RollReport:
    """Carry out every scheduled tenant's due steps (module docstring), a page of policies
    at a time; a tenant that fails is recorded with the reason and the walk goes on. Returns
    the report. Raises ``DependencyUnavailableError`` only if the policies cannot be read."""
    report = RollReport()
    after = ""
    while True:
        with svc.storage.transaction() as tx:
            page = tx.key_policies.page(after, batch)
        for policy in page:
            _roll_one(svc, policy, report)
        if progress is not None and page:
            progress(report)
        if len(page) < batch:
            return report
        after = page[-1].tenant_id


def _roll_one(svc: Services, policy: KeyPolicy, report: RollReport) -> None:
    before = len(report.steps)
    try:
        _due_steps(svc, policy, report)
    except key_rollover.KeyRaceError as exc:  # another run took this step first
        report.steps.append(Step(policy.tenant_id, "done-elsewhere", exc.detail))
    except TenantAuthError as exc:  # one tenant's failure must not stop the others
        report.steps.append(Step(policy.tenant_id, "failed", exc.detail))
    if len(report.steps) == before:
        report.idle += 1


def _due_steps(svc: Services, policy: KeyPolicy, report: RollReport) -> None:
    tid = policy.tenant_id
    now = int(svc.clock.now())
    retired = key_rollover.retire_expired(svc, tid, now)
    if retired:
        report.steps.append(Step(tid, "retired", f"{retired} key(s) past their grace"))
    tenant, _ = key_rollover.list_keys(svc, tid)
    if tenant.status is not TenantStatus.ACTIVE:
        return
    planned = next((k for k in tenant.others if k.state is KeyState.NEXT), None)
    if planned is not None:
        if now >= planned.at:
            change = key_rollover.rollover(svc, tid, grace=policy.grace, promote=planned.name)
            report.steps.append(Step(tid, "rolled", f"now signing with {change.tenant.kid}"))
        return
    due = int(tenant.rotated_at.timestamp()) + policy.every
    if now >= due - policy.publish_ahead:
        ahead = max(due - now, policy.publish_ahead)
        change = key_rollover.publish_next(svc, tid, ahead=ahead)
        report.steps.append(Step(tid, "published", f"{change.key.name}, signing from +{ahead} s"))
