"""Issuing and verifying access tokens (the hot path is ``TokenVerifier.verify``)."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeGuard, TypeVar

from tenantauth.crypto import jwt
from tenantauth.crypto.envelope import MasterKeyring
from tenantauth.domain.models import (
    IssuedToken,
    Tenant,
    TenantStatus,
    UserStatus,
    VerifiedToken,
    is_tenant_id,
)
from tenantauth.domain.policy import TokenPolicy
from tenantauth.domain.ports import Clock, Storage
from tenantauth.domain.verifying.keys import KeyResolver
from tenantauth.errors import (
    ConflictError,
    InvalidRequestError,
    InvalidTokenError,
    NotFoundError,
    RejectReason,
)

#: Claims the service sets itself; ``claims`` in an issue request may not override them.
RESERVED_CLAIMS = frozenset(
    {"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "tid", "scope", "uv", "kv"}
)
MAX_CUSTOM_CLAIMS_BYTES = 2048
MAX_SUBJECT_LENGTH = 255
MAX_SCOPE_LENGTH = 1024
MAX_AUDIENCES = 10
MAX_AUDIENCE_LENGTH = 255
# RFC 6749 §3.3: scope = scope-token *( SP scope-token ), scope-token = 1*NQCHAR.
_SCOPE_RE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*")
# C0 controls, DEL and C1 controls: never part of an identifier, and unsafe in logs/headers.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: The parsed-token memo (``TokenVerifier``): entries, and the longest token it keeps. At most
#: ~2048 × (1 KB token + its claims) ≈ 5 MB per process; ordinary tokens are ~350 characters.
PARSED_MEMO_MAX = 2048
PARSED_MEMO_TOKEN_MAX = 1024
T = TypeVar("T")


class TokenVerifier:
    """Verifies tenantauth access tokens strictly (VERIFIER-CHECKLIST, RFC 8725)."""

    def __init__(
        self,
        keys: KeyResolver,
        policy: TokenPolicy,
        clock: Clock,
        legacy_issuer_until: Callable[[], datetime | None] = lambda: None,
    ) -> None:
        """Wire the verifier. A random dummy key stands in for unknown tenants.
        ``legacy_issuer_until`` reads ``Storage.legacy_issuer_until`` (once it answers)."""
        self._keys = keys
        self._policy = policy
        self._clock = clock
        self._issuer_prefix = policy.issuer_for("")  # + the tenant id: its issuer
        self._read_legacy_until = legacy_issuer_until
        self._legacy_until: float | None = None
        self._legacy_known = False
        self._dummy_key = secrets.token_bytes(32)
        # Token -> its parse (shape, header, payload) and the key object that accepted its
        # signature. Parsing is a pure function of the token string, and a signature's
        # validity a pure function of the token and the key, so a memo cannot change a
        # verdict: the key is resolved afresh on every call (and a signature checked again
        # whenever it is another key), and every check that depends on the time or the
        # tenant's state runs on every call. Only tokens that passed every check are kept,
        # so forged tokens cannot churn it. Clear when full (bounded memory).
        self._parsed: dict[
            str, tuple[jwt.CompactToken, dict[str, Any], jwt.VerificationKey | None]
        ] = {}

    def verify(self, token: str, audience: str | None = None) -> VerifiedToken:
        """Return the verdict for a valid token.

        Raises ``InvalidTokenError`` (uniform, reason for logs only) for any bad, expired,
        revoked, unknown-tenant or wrong-audience token; ``DependencyUnavailableError`` when the
        answer cannot be known safely.
        """
        seen = self._parsed.get(token)
        parsed, claims, checked_with = seen if seen is not None else (*_parse(token), None)
        subject, jti = claims["sub"], claims["jti"]
        keys, state = self._keys.resolve(parsed.tenant_id, subject, jti)
        if keys is None:
            # Same work as a wrong signature, so unknown tenants are not distinguishable by
            # status, body or latency (VERIFIER-CHECKLIST #6).
            jwt.hs256_matches(self._dummy_key, parsed)
            raise InvalidTokenError("unknown or inactive tenant", RejectReason.UNKNOWN_TENANT)
        now = self._clock.now()
        candidates = keys.candidates(parsed.key_name, now)
        key = checked_with
        if checked_with is None or not _among(checked_with, candidates):
            # A signature's validity is a pure function of the token and the key: one this
            # very key object accepted before, still among the keys the token may name now,
            # needs no second check (which keeps key-pair tokens as cheap as HS256 ones when
            # answered from memory). Any other key is checked in full.
            key = _signer(parsed, candidates)
        self._check_claims(claims, parsed.tenant_id, audience, int(now))
        if _version_claim(claims, "kv", absent=1) != state.record.key_version:
            raise InvalidTokenError("minted under an earlier secret", RejectReason.ROTATED)
        if state.jti_revoked:
            raise InvalidTokenError("jti revoked", RejectReason.REVOKED_TOKEN)
        if _version_claim(claims, "uv", absent=0) < state.subject_version:
            raise InvalidTokenError("subject revoked", RejectReason.REVOKED_SUBJECT)
        if key is not checked_with:
            memoise(self._parsed, token, (parsed, claims, key))
        # A copy: callers get a dict of their own, never the memo's.
        return VerifiedToken(parsed.tenant_id, subject, claims.get("scope"), dict(claims))

    def _check_claims(
        self, claims: dict[str, Any], tenant_id: str, audience: str | None, now: int
    ) -> None:
        """Apply RFC 7519 §4.1 and VERIFIER-CHECKLIST #7–#8 to verified claims at ``now``."""
        leeway = self._policy.leeway
        exp, iat = _int_claim(claims, "exp"), _int_claim(claims, "iat")
        nbf = _int_claim(claims, "nbf") if "nbf" in claims else None
        if now >= exp + leeway:  # RFC 7519 §4.1.4
            raise InvalidTokenError("expired", RejectReason.EXPIRED)
        if nbf is not None and nbf > now + leeway:  # RFC 7519 §4.1.5
            raise InvalidTokenError("not yet valid", RejectReason.NOT_YET_VALID)
        if iat > now + leeway:  # RFC 7519 §4.1.6: issued in the future
            raise InvalidTokenError("iat in the future", RejectReason.NOT_YET_VALID)
        if exp - iat > self._policy.max_lifetime or exp <= iat:
            raise InvalidTokenError("lifetime out of bounds", RejectReason.LIFETIME)
        iss = claims.get("iss")
        if iss != self._issuer_prefix + tenant_id and not self._legacy(iss, iat):
            raise InvalidTokenError("wrong issuer", RejectReason.ISSUER)  # exact, §4.1.1
        if claims.get("tid") != tenant_id:
            raise InvalidTokenError("tid differs from kid", RejectReason.CLAIMS)
        for name in ("sub", "jti"):
            if not _nonempty_str(claims.get(name)):
                raise InvalidTokenError(f"{name} missing", RejectReason.CLAIMS)
        if "scope" in claims and not isinstance(claims["scope"], str):
            raise InvalidTokenError("scope not a string", RejectReason.CLAIMS)
        audiences = _audiences(claims.get("aud"))
        if audience is not None and audience not in audiences:  # RFC 7519 §4.1.3
            raise InvalidTokenError("audience mismatch", RejectReason.AUDIENCE)

    def _legacy(self, iss: object, iat: int) -> bool:
        """Whether ``iss`` is the service-wide issuer every token carried before tenants
        became issuers, on a token issued before that form ended (docs/design.md, "One issuer
        per tenant"). The cut-off is read from storage once; a storage outage raises
        ``StorageUnavailableError`` (fail closed, and only for such tokens)."""
        if iss != self._policy.issuer:
            return False
        if not self._legacy_known:
            until = self._read_legacy_until()
            self._legacy_until = None if until is None else until.timestamp()
            self._legacy_known = True
        return self._legacy_until is not None and iat < self._legacy_until


def _among(key: jwt.VerificationKey, candidates: tuple[jwt.VerificationKey, ...]) -> bool:
    """Whether this very key object is one of ``candidates`` (identity, not equality)."""
    return any(k is key for k in candidates)


def _signer(
    parsed: jwt.CompactToken, candidates: tuple[jwt.VerificationKey, ...]
) -> jwt.VerificationKey:
    """The key among ``candidates`` whose signature the token carries (at most a few: a
    bare tenant id during an HS256 rollover's grace). Raises ``InvalidTokenError``: the
    token names no key the tenant holds now, or no candidate's signature matches."""
    if not candidates:
        raise InvalidTokenError("signed by a key the tenant no longer holds", RejectReason.ROTATED)
    for key in candidates[:-1]:
        try:
            jwt.check_signature(parsed, key)
        except InvalidTokenError:
            continue
        return key
    jwt.check_signature(parsed, candidates[-1])  # the last one's refusal is the answer
    return candidates[-1]


def memoise(memo: dict[str, T], token: str, value: T) -> None:
    """Keep ``value`` for ``token`` in ``memo``, a per-process memo of verified tokens: a
    token longer than ``PARSED_MEMO_TOKEN_MAX`` is not kept, and a memo holding
    ``PARSED_MEMO_MAX`` tokens starts again (bounded memory, no bookkeeping per hit)."""
    if len(token) > PARSED_MEMO_TOKEN_MAX:
        return
    if len(memo) >= PARSED_MEMO_MAX:
        memo.clear()
    memo[token] = value


def _parse(token: str) -> tuple[jwt.CompactToken, dict[str, Any]]:
    """Return the shape-checked token and its claims, whose ``sub`` and ``jti`` are non-empty
    strings (without lone surrogates, as every string of a payload ``jwt.payload_of``
    returns). Raises ``InvalidTokenError`` otherwise.

    The payload is decoded before the signature check only to name the cache keys of its
    subject and jti (hashed, fixed prefix), so that one round trip fetches the tenant and both
    revocation marks. Nothing is decided from it until the signature over these very bytes has
    been checked (docs/design.md, "Verification order").
    """
    parsed = jwt.parse_compact(token)
    claims = jwt.payload_of(parsed)
    subject, jti = claims.get("sub"), claims.get("jti")
    if not (_nonempty_str(subject) and _nonempty_str(jti)):
        raise InvalidTokenError("sub or jti missing", RejectReason.CLAIMS)
    return parsed, claims


def issue_token(
    storage: Storage,
    keyring: MasterKeyring,
    policy: TokenPolicy,
    clock: Clock,
    request: TokenRequest,
) -> IssuedToken:
    """Mint an access token for ``request.tenant_id``.

    Returns the token and its lifetime. Raises ``NotFoundError`` for an unknown or deleted
    tenant, ``ConflictError`` for a suspended one, ``InvalidRequestError`` for a bad TTL,
    reserved or oversized custom claims, or a token that would exceed the verifier's size cap.
    """
    if not is_tenant_id(request.tenant_id):
        raise NotFoundError("no tenant has that id")
    with storage.transaction() as tx:
        tenant = tx.get_tenant(request.tenant_id)
        revoked_version = tx.revocations.subject_version(request.tenant_id, request.subject)
        user = tx.users.get(request.tenant_id, request.subject)
    status = user.status if user is not None else None
    return mint_token(
        keyring,
        policy,
        clock,
        request,
        tenant,
        subject_version=revoked_version,
        subject_status=status,
    )


def mint_token(
    keyring: MasterKeyring,
    policy: TokenPolicy,
    clock: Clock,
    request: TokenRequest,
    tenant: Tenant | None,
    *,
    subject_version: int,
    subject_status: UserStatus | None,
) -> IssuedToken:
    """Mint an access token from state already read: ``tenant`` is the row of
    ``request.tenant_id`` (None if there is none), ``subject_version`` the subject's
    revocation version, ``subject_status`` the status of a user named like the subject (None
    if there is none). Does no I/O.

    Returns and raises what ``issue_token`` does.
    """
    if subject_status is UserStatus.DISABLED:
        raise ConflictError(f"user {request.subject!r} is disabled; enable it first")
    if tenant is None or tenant.status is TenantStatus.DELETED or tenant.sealed_secret is None:
        raise NotFoundError(f"tenant {request.tenant_id!r} does not exist")
    if tenant.status is TenantStatus.SUSPENDED:
        raise ConflictError(f"tenant {request.tenant_id!r} is suspended; resume it first")
    ttl = tenant.access_token_ttl if request.ttl is None else request.ttl
    limit = min(tenant.max_token_ttl, policy.max_lifetime)
    if not 1 <= ttl <= limit:
        raise InvalidRequestError(f"ttl must be between 1 and {limit} seconds for this tenant")
    now = int(clock.now())
    claims: dict[str, Any] = {
        "iss": policy.issuer_for(tenant.id),
        "sub": request.subject,
        "aud": request.audience or policy.default_audience,
        "exp": now + ttl,
        "iat": now,
        "nbf": now,
        "jti": secrets.token_urlsafe(16),
        "tid": tenant.id,
    }
    if request.scope:
        claims["scope"] = request.scope
    if subject_version:
        claims["uv"] = subject_version  # tokens of earlier versions are revoked
    if tenant.key_version != 1:
        claims["kv"] = tenant.key_version  # tokens of earlier secrets are revoked
    claims.update(request.claims)
    key = keyring.open(tenant.key_binding, tenant.sealed_secret)
    token = jwt.encode(claims, tenant.id, key, alg=tenant.alg, key_name=tenant.key_name)
    if len(token) > jwt.MAX_TOKEN_LENGTH:
        raise InvalidRequestError(f"the token would exceed {jwt.MAX_TOKEN_LENGTH} characters")
    return IssuedToken(token, ttl)


class TokenRequest:
    """A validated request to mint a token (bounds checked on construction)."""

    __slots__ = ("audience", "claims", "scope", "subject", "tenant_id", "ttl")

    def __init__(
        self,
        tenant_id: str,
        subject: str,
        *,
        ttl: int | None = None,
        audience: str | list[str] | None = None,
        scope: str | None = None,
        claims: dict[str, Any] | None = None,
    ) -> None:
        """Validate the request. Raises ``InvalidRequestError`` saying what is wrong."""
        if not 1 <= len(subject) <= MAX_SUBJECT_LENGTH:
            raise InvalidRequestError(f"sub must be 1 to {MAX_SUBJECT_LENGTH} characters")
        if CONTROL_CHARACTERS.search(subject):
            raise InvalidRequestError("sub must not contain control characters")
        if scope is not None and len(scope) > MAX_SCOPE_LENGTH:
            raise InvalidRequestError(f"scope must be at most {MAX_SCOPE_LENGTH} characters")
        if scope is not None and not _SCOPE_RE.fullmatch(scope):
            raise InvalidRequestError(
                "scope must be space-separated tokens of printable ASCII without '\"' or '\\' "
                "(RFC 6749 §3.3)"
            )
        _check_audience(audience)
        extra = dict(claims or {})
        clash = sorted(RESERVED_CLAIMS & extra.keys())
        if clash:
            raise InvalidRequestError(f"claims may not set reserved claims: {', '.join(clash)}")
        if len(json.dumps(extra, separators=(",", ":"))) > MAX_CUSTOM_CLAIMS_BYTES:
            raise InvalidRequestError(
                f"claims must serialise to at most {MAX_CUSTOM_CLAIMS_BYTES} bytes"
            )
        self.tenant_id, self.subject, self.ttl = tenant_id, subject, ttl
        self.audience, self.scope, self.claims = audience, scope, extra


def _check_audience(audience: str | list[str] | None) -> None:
    values = [audience] if isinstance(audience, str) else (audience or [])
    if isinstance(audience, list) and not 1 <= len(values) <= MAX_AUDIENCES:
        raise InvalidRequestError(f"aud must list 1 to {MAX_AUDIENCES} audiences")
    if any(not 1 <= len(v) <= MAX_AUDIENCE_LENGTH for v in values):
        raise InvalidRequestError(f"each audience must be 1 to {MAX_AUDIENCE_LENGTH} characters")


def _int_claim(claims: dict[str, Any], name: str) -> int:
    value = claims.get(name)
    # JSON integers only: bool is an int subclass, floats/strings are refused (CHECKLIST #7).
    if type(value) is not int:
        raise InvalidTokenError(f"{name} missing or not an integer", RejectReason.CLAIMS)
    return value


def _version_claim(claims: dict[str, Any], name: str, *, absent: int) -> int:
    """A version the token was minted under: ``uv`` (the subject's revocation version,
    absent = 0) or ``kv`` (the tenant's key version, absent = 1). Omitted at their starting
    value so that ordinary tokens stay small."""
    if name not in claims:
        return absent
    value = claims[name]
    if type(value) is not int or value < 0:
        raise InvalidTokenError(f"{name} not a non-negative integer", RejectReason.CLAIMS)
    return value


def _nonempty_str(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value != ""


def _audiences(aud: object) -> list[str]:
    if isinstance(aud, str) and aud:
        return [aud]
    if isinstance(aud, list) and aud and all(_nonempty_str(a) for a in aud):
        return aud
    raise InvalidTokenError("aud missing or malformed", RejectReason.CLAIMS)
