"""Brute-force limiting of failed password and client-secret attempts (issue 3, "Brute force").

Failures are counted per tenant+username and per client IP (OWASP Authentication Cheat Sheet,
"Protect against automated attacks"; RFC 6749 §10.10 and RFC 6819 §5.1.4.2.3 for OAuth
credentials). A key is locked once it reaches its threshold within the window, for the lockout
period, and then starts from zero again.

How to use a ``FailureLimiter``, in this order::

    keys = failure_keys(tenant_id, username, client_ip)
    counted = limiter.check(keys)                 # RateLimitedError → 429 + Retry-After
    if credentials are wrong or the username is unknown:
        limiter.record_failure(keys)              # unknown usernames count too
    elif user_key(tenant_id, username) in counted:
        limiter.reset([user_key(tenant_id, username)])   # never the IP key

Lockout never reveals whether a username exists: the keys are built from the name as typed,
without looking it up, so an unknown and a known username get the same counters, the same
lockout and the same answers — provided callers record failures for unknown usernames too and
check before they look the user up.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tenantauth.errors import ConfigurationError, RateLimitedError

#: Prefix of the per-IP keys; ``LimitPolicy.threshold`` recognises them by it.
IP_KEY_PREFIX = "ip:"
#: IPv6 clients are counted per /64: a /64 is the smallest subnet a host gets (64-bit interface
#: ids, RFC 4291 §2.5.1), so one client can change addresses within it at will.
IPV6_PREFIX_LENGTH = 64


@dataclass(frozen=True, slots=True)
class LimitPolicy:
    """How many failures lock a key, within what window, and for how long (seconds).

    ``ip_max_failures`` is the threshold of per-IP keys; None means ``max_failures``. Many
    users can share one address (NAT, proxies), so operators may want it higher.
    """

    max_failures: int = 5
    window_seconds: int = 300
    lockout_seconds: int = 300
    ip_max_failures: int | None = None

    def __post_init__(self) -> None:
        """Raises ``ConfigurationError`` unless every number is positive."""
        values = (self.max_failures, self.window_seconds, self.lockout_seconds)
        if min(values) < 1 or (self.ip_max_failures is not None and self.ip_max_failures < 1):
            raise ConfigurationError(["login limit numbers must be positive"])

    def threshold(self, key: str) -> int:
        """Return the number of failures that locks ``key``."""
        if key.startswith(IP_KEY_PREFIX) and self.ip_max_failures is not None:
            return self.ip_max_failures
        return self.max_failures


class FailureLimiter(Protocol):
    """Counts failed authentication attempts per key and refuses locked keys.

    Keys are the plain strings of ``failure_keys``; adapters add their own prefix. Adapters
    raise ``CacheUnavailableError`` when their store fails; callers then fail closed (503),
    as an unknown lock state must not let a guesser through.
    """

    def check(self, keys: Sequence[str]) -> frozenset[str]:
        """Return the keys that have failures counted, if no key is locked.

        A caller may skip ``reset`` of a key that is not among them: there is nothing to
        forget, and a failure counted since stays counted (stricter, never looser).
        Raises ``RateLimitedError`` whose ``retry_after`` is the longest remaining lockout
        among the locked keys, in whole seconds rounded up (RFC 9110 §10.2.3 Retry-After).
        """
        ...

    def record_failure(self, keys: Sequence[str]) -> None:
        """Count one failure against each key; a key reaching its threshold is locked for
        ``lockout_seconds``. Counting starts a window of ``window_seconds``."""
        ...

    def reset(self, keys: Sequence[str]) -> None:
        """Forget the failures of ``keys`` (after a success). Pass only the user key: one
        good login must not clear an IP's failures against other accounts."""
        ...


def user_key(tenant_id: str, username: str) -> str:
    """Return the key of ``username`` in ``tenant_id``: ``<tenant>:user:<sha256 hex>``.

    The username is NFKC-normalised and case-folded, so case variants share one counter, then
    hashed, so keys never hold raw usernames (a plain hash hides them from casual readers of
    the store, not from a dictionary).
    """
    folded = unicodedata.normalize("NFKC", username).casefold()
    digest = hashlib.sha256(folded.encode("utf-8")).hexdigest()
    return f"{tenant_id}:user:{digest}"


def ip_key(client_ip: str) -> str:
    """Return the key of a client address: ``ip:<IPv4>`` or ``ip:<IPv6 /64 network>``.

    IPv4-mapped IPv6 addresses count as their IPv4 address. Text that is not an IP address
    (it should not happen) is hashed, so keys stay short and free of caller-controlled text.
    """
    try:
        address = ipaddress.ip_address(client_ip.strip())
    except ValueError:
        return f"{IP_KEY_PREFIX}invalid:{hashlib.sha256(client_ip.encode()).hexdigest()}"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"{IP_KEY_PREFIX}{address.ipv4_mapped}"
        # int() drops any zone id (fe80::1%eth0): the zone is local to the proxy, not the client.
        network = ipaddress.IPv6Network((int(address), IPV6_PREFIX_LENGTH), strict=False)
        return f"{IP_KEY_PREFIX}{network}"
    return f"{IP_KEY_PREFIX}{address}"


def failure_keys(tenant_id: str, username: str, client_ip: str | None) -> list[str]:
    """Return ``[user_key(...), ip_key(...)]``; only the user key when ``client_ip`` is None.

    For client-secret attempts pass the ``client_id`` as ``username``.
    """
    keys = [user_key(tenant_id, username)]
    if client_ip is not None:
        keys.append(ip_key(client_ip))
    return keys


def retry_after_seconds(remaining: float) -> int:
    """Return ``remaining`` seconds as a Retry-After value: rounded up, at least 1."""
    return max(1, math.ceil(remaining))


def locked_error(retry_after: int) -> RateLimitedError:
    """Return the one error every limiter raises; its text is the same for every key, so it
    says nothing about the username."""
    return RateLimitedError(
        f"Too many failed attempts; try again in {retry_after} seconds.", retry_after=retry_after
    )
