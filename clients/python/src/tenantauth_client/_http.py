"""HTTP plumbing: one urllib3 pool, two retry policies, and the map from answers to errors.

Pooling, timeouts, retries, backoff and ``Retry-After`` are urllib3's (``PoolManager`` and
``urllib3.util.Retry``); this module only chooses their settings and reads the answers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError
from urllib3.util import Retry, Timeout, parse_url

from tenantauth_client.errors import (
    ApiError,
    ConfigurationError,
    RateLimited,
    ServiceUnavailable,
    error_class,
)

log = logging.getLogger("tenantauth_client")

#: Every method the client sends; "safe" calls may be retried whatever their HTTP method.
ALL_METHODS: Final = frozenset({"GET", "POST", "PATCH", "DELETE"})
#: The only status retried: tenantauth's "cannot answer safely now" (it fails closed).
RETRY_STATUSES: Final = frozenset({503})
JSON_TYPES: Final = ("application/json", "application/problem+json")


class BoundedRetry(Retry):
    """``urllib3.util.Retry`` that retries only the statuses of ``status_forcelist``, and
    whose wait for a ``Retry-After`` header is capped at ``backoff_max`` seconds.

    urllib3 on its own also retries any 413 or 429 that carries ``Retry-After`` (tenantauth's
    429s do), and before 2.6 sleeps as long as the server asks.
    """

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        """Return whether to retry: only a status of ``status_forcelist`` (never a 4xx)."""
        forcelist = self.status_forcelist or ()
        return status_code in forcelist and super().is_retry(method, status_code, has_retry_after)

    def parse_retry_after(self, retry_after: str) -> float:
        """Return the server's ``Retry-After`` in seconds, at most ``backoff_max``."""
        return min(super().parse_retry_after(retry_after), self.backoff_max)


def retry_policies(retries: int, backoff_factor: float, backoff_max: float) -> tuple[Retry, Retry]:
    """Return the two retry policies: ``(safe, unsent)``.

    ``safe`` is for calls that may run twice: up to ``retries`` retries after a connection
    error, a read error (the request may have arrived) or a 503, waiting
    ``backoff_factor * 2**(n-1)`` seconds (at most ``backoff_max``) or the server's
    ``Retry-After`` (capped the same). ``unsent`` is for calls that must not run twice: it
    retries only failures to connect, when the request cannot have reached the server.
    Neither retries a redirect or any status but 503: never a 401 or another 4xx.
    """
    common: dict[str, Any] = {
        "total": retries,
        "connect": retries,
        "redirect": False,
        "backoff_factor": backoff_factor,
        "backoff_max": backoff_max,
        "allowed_methods": ALL_METHODS,
        "raise_on_status": False,  # the last 503 comes back and maps to ServiceUnavailable
    }
    safe = BoundedRetry(
        read=retries,
        status=retries,
        status_forcelist=RETRY_STATUSES,
        respect_retry_after_header=True,
        **common,
    )
    # read=False re-raises a read error at once; no status list and no Retry-After: no status
    # is retried. (An empty allowed_methods would mean "every method" to urllib3.)
    unsent = BoundedRetry(
        read=False,
        status=0,
        other=0,
        status_forcelist=(),
        respect_retry_after_header=False,
        **common,
    )
    return safe, unsent


def check_base_url(base_url: str) -> str:
    """Return ``base_url`` without a trailing slash.

    Raises ``ConfigurationError`` unless it is an http(s) URL with a host and no query.
    """
    try:
        url = parse_url(base_url)
    except ValueError as exc:
        raise ConfigurationError(f"base_url is not a URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host or url.query or url.fragment:
        raise ConfigurationError("base_url must be http(s)://host[:port][/prefix]")
    return base_url.rstrip("/")


def segment(value: str) -> str:
    """Percent-encode one path segment (RFC 3986 §3.3): ``/`` and everything else reserved
    included, so a user name such as ``team/alice`` stays one segment."""
    return quote(value, safe="")


class Transport:
    """Sends JSON requests to one tenantauth base URL over a pooled urllib3 ``PoolManager``."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        retries: tuple[Retry, Retry],
        headers: Mapping[str, str] | None = None,
        pool_maxsize: int = 10,
    ) -> None:
        """Pool connections to ``base_url``; ``timeout`` (s) bounds connecting and each read."""
        self.base_url = check_base_url(base_url)
        self.safe, self.unsent = retries
        self._headers = {"Accept": "application/json", **(headers or {})}
        self._pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=pool_maxsize,
            timeout=Timeout(connect=timeout, read=timeout),
            retries=self.safe,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        bearer: str | None = None,
        safe: bool = True,
        gone_ok: bool = False,
    ) -> Any:
        """Send one request (retried per the ``safe`` or ``unsent`` policy); return the JSON
        answer of a 2xx (``None`` if it has no body). With ``gone_ok``, a 404 that follows an
        attempt which may have reached the server (a 503 or a read error) is a success too:
        that attempt did what a DELETE asks.

        Raises an ``ApiError`` subclass for 4xx/5xx answers (``error_class``), and
        ``ServiceUnavailable`` for a 1xx/3xx answer, an unreadable 2xx body, or no answer.
        """
        headers = dict(self._headers)
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        payload = None
        if body is not None:
            payload = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        try:
            response = self._pool.request(
                method,
                self.base_url + path,
                body=payload,
                headers=headers,
                retries=self.safe if safe else self.unsent,
                redirect=False,
            )
        except HTTPError as exc:  # MaxRetryError, or a read error the policy may not retry
            reason = getattr(exc, "reason", None) or exc
            log.warning("tenantauth unreachable: %s %s: %s", method, path, type(reason).__name__)
            raise ServiceUnavailable(
                None, "unreachable", "tenantauth unreachable", f"{method} {path}: {reason}"
            ) from None
        if gone_ok and response.status == 404 and _reached_before(response.retries):
            return None
        return _answer(response.status, response.headers, response.data)

    def close(self) -> None:
        """Close every pooled connection."""
        self._pool.clear()


def _reached_before(retries: Retry | None) -> bool:
    """Return whether an earlier attempt may have reached the server (not a connect error)."""
    history = retries.history if retries is not None else ()
    return any(
        h.status is not None or not isinstance(h.error, ConnectTimeoutError) for h in history
    )


def _answer(status: int, headers: Mapping[str, str], data: bytes) -> Any:
    if 200 <= status < 300:
        if not data:
            return None
        try:
            return json.loads(data)
        except ValueError:
            raise _unexpected(status, "the answer is not JSON") from None
    if status < 400:
        raise _unexpected(status, "tenantauth does not redirect; check base_url")
    error = error_class(status).from_problem(status, _problem(headers, data))
    if isinstance(error, RateLimited):
        retry_after = headers.get("Retry-After", "")
        error.retry_after = int(retry_after) if retry_after.isdigit() else None
    raise error


def _problem(headers: Mapping[str, str], data: bytes) -> Mapping[str, Any]:
    """Return the RFC 9457 problem object of an error answer, or ``{}`` if it sent none."""
    if not headers.get("Content-Type", "").startswith(JSON_TYPES):
        return {}
    try:
        problem = json.loads(data)
    except ValueError:
        return {}
    return problem if isinstance(problem, dict) else {}


def _unexpected(status: int, detail: str) -> ApiError:
    return ServiceUnavailable(status, "unexpected_response", "Unexpected answer", detail)
