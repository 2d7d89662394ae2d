"""The tamper-evident audit log: record admin actions, list them, verify the chain.

Each entry's ``entry_hash`` is HMAC-SHA256, under a key derived from the master key, of a
canonical encoding of the entry followed by the previous entry's hash (a hash chain, as in
RFC 6962 §2.1's log: changing any entry changes every later link). Keyed, so that someone who
can write the database but does not hold the master key cannot recompute the chain after an
edit (docs/design.md, "Audit log"). Appends are serialised by ``tx.audit.lock_head``.

A master-key rotation ends with a *checkpoint* (``checkpoint``): an entry, keyed by the new
key, whose target is the SHA-256 of every earlier entry. Once the old key is dropped, the
entries it keyed can no longer be checked one by one, but the checkpoint still vouches for
them all: ``verify_chain`` accepts entries under an unknown key only if a later checkpoint
under a known key covers them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from tenantauth.crypto.jwt import parse_compact, payload_of
from tenantauth.domain import paging
from tenantauth.domain.admin.admin_models import AdminPrincipal, AuditEntry, AuditEvent, AuditQuery
from tenantauth.domain.admin.audit_input import TIME_RANGE, representable, storable
from tenantauth.domain.services import Services
from tenantauth.errors import (
    ConflictError,
    InvalidRequestError,
    InvalidTokenError,
    PermissionDeniedError,
    TenantAuthError,
)

log = logging.getLogger(__name__)
#: Where each new chain head is published (docs/design.md, "Audit log"): a line per change in
#: the service's log stream, which the database cannot rewrite, so a log archive can later
#: prove that the newest entries were cut off (``verify_chain(..., published=…)``).
head_log = logging.getLogger("tenantauth.audit.head")

#: HKDF ``info`` of the chain key (RFC 5869 §3.2).
AUDIT_CHAIN_PURPOSE = b"tenantauth/audit-chain-hmac/v1"
#: The ``prev_hash`` of entry 1.
GENESIS = bytes(32)
_FORMAT_VERSION = 1
VERIFY_BATCH = 1000
#: The action of a checkpoint entry; its target is the transcript digest (hex).
CHECKPOINT_ACTION = "audit.checkpoint"


@dataclass(frozen=True, slots=True)
class AuditPage:
    """One page of audit entries, newest first; ``next_cursor`` is None on the last page."""

    items: list[AuditEntry]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The result of walking the chain: how many entries were checked, the last good link,
    and the first broken one (None if the chain is intact)."""

    checked: int
    head_seq: int
    head_hash: bytes
    broken_seq: int | None = None
    reason: str | None = None


def record(svc: Services, event: AuditEvent) -> AuditEntry:
    """Append ``event`` to the chain in a transaction of its own; return the stored entry.

    Raises ``StorageUnavailableError`` if it could not be written.
    """
    now = datetime.fromtimestamp(svc.clock.now(), UTC)
    key, event = chain_keys(svc)[0], storable(event)
    with svc.storage.transaction() as tx:
        head = tx.audit.lock_head()
        seq, prev = (head.seq + 1, head.entry_hash) if head else (1, GENESIS)
        entry = AuditEntry(seq, now, event, prev, link_hash(key, seq, now, event, prev))
        tx.audit.append(entry)
    publish_head(entry)
    svc.telemetry.audit_head(entry.seq)
    svc.telemetry.change(event.action, event.outcome)
    return entry


_HEAD_RE = re.compile(r"([0-9]{1,18}):([0-9a-fA-F]{64})")


@dataclass(frozen=True, slots=True)
class PublishedHead:
    """A chain head kept outside the database (from the log line ``publish_head`` writes)."""

    seq: int
    entry_hash: bytes

    @classmethod
    def parse(cls, text: str) -> PublishedHead:
        """Return the head written as ``SEQ:HEX`` (the form of the log line and of
        ``tenantauth audit verify``). Raises ``ValueError`` for anything else."""
        match = _HEAD_RE.fullmatch(text.strip())
        if match is None or int(match[1]) < 1:
            raise ValueError("a head is SEQ:HASH, e.g. 42:9f86d0…, with a 64-digit hex hash")
        return cls(int(match[1]), bytes.fromhex(match[2]))


def publish_head(entry: AuditEntry) -> None:
    """Log the new chain head once its entry is committed: ``audit head SEQ:HASH``."""
    head_log.info("audit head %d:%s", entry.seq, entry.entry_hash.hex())


def record_action(svc: Services, event: AuditEvent) -> AuditEntry | None:
    """Append the entry of one admin action, from the API or the CLI: the one path both use.

    Returns the stored entry, or None when it could not be written. It does not raise: the
    action has already happened (or failed) by then, so its caller still reports it, and the
    entry is logged at ERROR with every field so it can be entered later (docs/design.md,
    "Audit log").
    """
    try:
        return record(svc, event)
    except TenantAuthError as exc:
        log.error("audit entry NOT recorded (%s): %r", exc.code, event)  # noqa: TRY400 - no trace
        return None


def outcome(status: int) -> str:
    """Return the outcome of an action answered with HTTP ``status``: ``success`` below 400,
    else the status itself (the CLI records the status the API answers for the same error,
    so one filter finds both)."""
    return "success" if status < 400 else str(status)


def revoked_token_ref(token: str) -> tuple[str, str] | None:
    """Return (tenant id, ``jti``) of a token that ``revocations.revoke_token`` has just
    revoked, for the entry's target; None if the token is not even shaped like ours.

    Reads the claims without checking the signature again: that is only sound for a token
    the revocation verified (it returned True), never to decide anything.
    """
    try:
        parsed = parse_compact(token)
        jti = payload_of(parsed).get("jti")
    except InvalidTokenError:
        return None
    return (parsed.tenant_id, jti) if isinstance(jti, str) else None


def list_entries(
    svc: Services,
    viewer: AdminPrincipal,
    query: AuditQuery,
    cursor: str | None = None,
    limit: int = paging.DEFAULT_PAGE_SIZE,
) -> AuditPage:
    """Return one page of entries matching ``query``, newest first.

    A tenant admin sees only its tenant's entries. Raises ``PermissionDeniedError`` when a
    tenant admin asks for another tenant, ``InvalidRequestError`` for a malformed cursor, a
    limit outside 1..500 or a time outside ``TIME_RANGE``.
    """
    for name, when in (("since", query.since), ("until", query.until)):
        if when is not None and not representable(when):
            raise InvalidRequestError(f"{name} must lie within {TIME_RANGE} in UTC")
    if not viewer.is_global:
        if query.tenant_id not in (None, viewer.tenant_id):
            raise PermissionDeniedError("a tenant admin sees only its own tenant's entries")
        query = replace(query, tenant_id=viewer.tenant_id)
    if not 1 <= limit <= paging.MAX_PAGE_SIZE:
        raise InvalidRequestError(f"limit must be between 1 and {paging.MAX_PAGE_SIZE}")
    before = _seq_of(cursor) if cursor else None
    with svc.storage.transaction() as tx:
        rows = tx.audit.search(query, before, limit + 1)
    items = rows[:limit]
    return AuditPage(items, str(items[-1].seq) if len(rows) > limit else None)


def verify_chain(
    svc: Services, batch: int = VERIFY_BATCH, published: PublishedHead | None = None
) -> ChainReport:
    """Walk the whole chain in order; return a report naming the first broken link.

    A link is broken when its ``seq`` is not the previous one plus one (a row was deleted or
    renumbered), its ``prev_hash`` is not the previous ``entry_hash`` (rows were reordered or
    one was replaced), or its ``entry_hash`` does not match its content under any master key
    (it was edited) — unless a later checkpoint under a configured key covers it (its key was
    dropped after a master-key rotation), in which case the checkpoint's digest of every
    earlier entry must match. Deleting the newest entries is not detectable from the database
    alone: give ``published``, a head kept outside it (the ``audit head`` log line of any
    change), and the chain must still hold that entry with that hash. Raises
    ``StorageUnavailableError``.
    """
    walk = _Walk(chain_keys(svc), published.seq if published else None)

    def read(after: int) -> list[AuditEntry]:
        with svc.storage.transaction() as tx:  # one short transaction per batch
            return tx.audit.walk(after, batch)

    report = walk.run(read, batch)
    if published is None or report.broken_seq is not None:
        return report
    return _against(report, published, walk.hash_at_published)


def _against(report: ChainReport, head: PublishedHead, found: bytes | None) -> ChainReport:
    """Return ``report``, broken if the chain lacks ``head`` (cut off, or rewritten)."""
    if found is None:
        reason = (
            f"the chain ends at entry {report.head_seq} but entry {head.seq} was published: "
            f"entries {report.head_seq + 1} to {head.seq} at least were deleted (truncated)"
        )
        return replace(report, broken_seq=report.head_seq + 1, reason=reason)
    if not hmac.compare_digest(found, head.entry_hash):
        reason = f"entry {head.seq} is not the one published (the chain was rewritten from there)"
        return replace(report, broken_seq=head.seq, reason=reason)
    return report


def checkpoint(svc: Services, event: AuditEvent) -> AuditEntry:
    """Verify the chain, then append a checkpoint: ``event`` with action
    ``audit.checkpoint`` and, as target, the SHA-256 of every earlier entry (``_Walk``).

    Run after a master-key rotation, so the entries keyed by the old key stay verifiable once
    it is dropped. Raises ``ConflictError`` if the chain is broken (nothing is appended),
    ``StorageUnavailableError``.
    """
    walk = _Walk(chain_keys(svc))
    with svc.storage.transaction() as tx:
        head = tx.audit.lock_head()
        # One walk under the lock: it verifies, and its digest covers exactly the entries
        # before the one appended here.
        report = walk.run(lambda after: tx.audit.walk(after, VERIFY_BATCH), VERIFY_BATCH)
        if report.broken_seq is not None:
            raise ConflictError(f"the audit chain is broken at entry {report.broken_seq}")
        now = datetime.fromtimestamp(svc.clock.now(), UTC)
        seq, prev = (head.seq + 1, head.entry_hash) if head else (1, GENESIS)
        marked = replace(storable(event), action=CHECKPOINT_ACTION, target=walk.digest())
        entry = AuditEntry(seq, now, marked, prev, link_hash(walk.keys[0], seq, now, marked, prev))
        tx.audit.append(entry)
    publish_head(entry)
    svc.telemetry.audit_head(entry.seq)
    return entry


class _Walk:
    """The state of a walk along the chain: the last link, a running SHA-256 transcript of
    every entry seen (what checkpoints vouch for), and where the entries start that no
    configured key could check and no checkpoint has covered yet."""

    def __init__(self, keys: Sequence[bytes], published_seq: int | None = None) -> None:
        self.keys = keys
        self.published_seq = published_seq
        self.hash_at_published: bytes | None = None
        self.checked, self.seq, self.prev = 0, 0, GENESIS
        self.unchecked_from: int | None = None
        self._transcript = hashlib.sha256()

    def run(self, read: Callable[[int], list[AuditEntry]], batch: int) -> ChainReport:
        """Take every entry ``read(after_seq)`` yields, ``batch`` at a time; return the report
        (the first broken link, if any)."""
        while True:
            entries = read(self.seq)
            for entry in entries:
                reason = self.step(entry)
                if reason is not None:
                    return ChainReport(self.checked, self.seq, self.prev, self.seq + 1, reason)
            if len(entries) < batch:
                return self.report()

    def digest(self) -> str:
        return self._transcript.hexdigest()

    def step(self, entry: AuditEntry) -> str | None:
        """Take one entry; return why the chain is broken there, or None."""
        seq = self.seq + 1
        if entry.seq != seq:
            return f"entry {seq} is missing (the next entry is {entry.seq})"
        if not hmac.compare_digest(entry.prev_hash, self.prev):
            return f"entry {seq} does not link to entry {seq - 1} (reordered or replaced)"
        expected = [link_hash(k, seq, entry.occurred_at, entry.event, self.prev) for k in self.keys]
        if not any(hmac.compare_digest(entry.entry_hash, e) for e in expected):
            if self.unchecked_from is None:
                self.unchecked_from = seq  # keyed by a dropped key, or edited: a checkpoint says
        elif entry.event.action == CHECKPOINT_ACTION and self.unchecked_from is not None:
            if not hmac.compare_digest((entry.event.target or "").encode(), self.digest().encode()):
                return f"entries {self.unchecked_from} to {seq - 1} do not match checkpoint {seq}"
            self.unchecked_from = None
        self._transcript.update(
            canonical(seq, entry.occurred_at, entry.event) + entry.prev_hash + entry.entry_hash
        )
        self.checked, self.seq, self.prev = self.checked + 1, seq, entry.entry_hash
        if seq == self.published_seq:
            self.hash_at_published = entry.entry_hash
        return None

    def report(self) -> ChainReport:
        if self.unchecked_from is None:
            return ChainReport(self.checked, self.seq, self.prev)
        reason = (
            f"entry {self.unchecked_from} does not match its hash under any configured master "
            "key, and no later checkpoint covers it (edited, or its key was dropped before a "
            "checkpoint)"
        )
        return ChainReport(self.checked, self.seq, self.prev, self.unchecked_from, reason)


def chain_keys(svc: Services) -> list[bytes]:
    """Return the chain key of the current master key, then those of older master keys."""
    current, older = svc.keyring.derive(AUDIT_CHAIN_PURPOSE)
    return [current, *older]


def link_hash(
    key: bytes, seq: int, occurred_at: datetime, event: AuditEvent, prev_hash: bytes
) -> bytes:
    """Return the entry hash: HMAC-SHA256(key, canonical entry || prev_hash)."""
    return hmac.new(key, canonical(seq, occurred_at, event) + prev_hash, hashlib.sha256).digest()


def canonical(seq: int, occurred_at: datetime, event: AuditEvent) -> bytes:
    """Return the one byte encoding of an entry that is hashed: a JSON array in a fixed
    order, ASCII only, no spaces, the time as UTC ISO 8601 with microseconds."""
    when = occurred_at.astimezone(UTC).isoformat(timespec="microseconds")
    fields = [
        _FORMAT_VERSION,
        seq,
        when,
        event.actor,
        event.tenant_id,
        event.action,
        event.target,
        event.request_id,
        event.outcome,
    ]
    return json.dumps(fields, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _seq_of(cursor: str) -> int:
    # The cursor is the seq of the last entry shown, in ASCII digits: a rule the API can state
    # as a pattern (api/rules.py AUDIT_CURSOR), so any cursor matching it is accepted.
    if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 18:
        raise InvalidRequestError("cursor is malformed; use next_cursor from a listing")
    return int(cursor)
