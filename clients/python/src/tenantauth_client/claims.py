"""The verified claims of a token, as a typed, immutable value."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class Claims:
    """What tenantauth vouched for: the claims of a token it verified.

    - ``tenant_id``: the tenant (claim ``tid``, equal to the header ``kid``).
    - ``subject``: claim ``sub`` (a user name or, for client credentials, a client id).
    - ``scope``: claim ``scope`` as sent (``None`` if absent); ``scopes`` the same split into a
      set of scope tokens (RFC 6749 §3.3: space-delimited, order irrelevant).
    - ``audience``: claim ``aud`` as a tuple (RFC 7519 §4.1.3 allows a string or an array).
    - ``expires_at``, ``issued_at``: claims ``exp`` and ``iat`` as aware UTC datetimes.
    - ``jti``: claim ``jti`` (``None`` if absent).
    - ``raw``: every claim, read-only, including custom ones (``client_id``, ``kv``, ...).
    """

    tenant_id: str
    subject: str
    scope: str | None
    scopes: frozenset[str]
    audience: tuple[str, ...]
    expires_at: datetime
    issued_at: datetime
    jti: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False, hash=False)

    @classmethod
    def from_json(cls, claims: Mapping[str, Any]) -> Claims:
        """Return ``Claims`` for the ``claims`` object of a ``/v1/verify`` answer.

        Raises ``KeyError``, ``TypeError`` or ``ValueError`` when a claim the server always
        sends (``tid``, ``sub``, ``exp``, ``iat``) is missing or mistyped; the client turns that
        into ``ServiceUnavailable`` (an answer it cannot trust is no answer).
        """
        scope = claims.get("scope")
        if scope is not None and not isinstance(scope, str):
            raise TypeError("scope is not a string")
        return cls(
            tenant_id=_text(claims["tid"]),
            subject=_text(claims["sub"]),
            scope=scope,
            scopes=frozenset(scope.split()) if scope else frozenset(),
            audience=_audience(claims.get("aud")),
            expires_at=_instant(claims["exp"]),
            issued_at=_instant(claims["iat"]),
            jti=_text(claims["jti"]) if claims.get("jti") is not None else None,
            raw=MappingProxyType(dict(claims)),
        )

    def has_scopes(self, required: Iterable[str]) -> bool:
        """Return whether the token grants every scope in ``required``."""
        return self.scopes.issuperset(required)

    @property
    def expires_at_epoch(self) -> int:
        """Return ``exp`` as seconds since the epoch (the JSON value)."""
        return int(self.expires_at.timestamp())


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string claim")
    return value


def _instant(value: Any) -> datetime:
    # RFC 7519 §2 NumericDate; the server only ever sends integers (VERIFIER-CHECKLIST #7).
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("expected an integer NumericDate")
    return datetime.fromtimestamp(value, UTC)


def _audience(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise TypeError("aud is neither a string nor an array of strings")
