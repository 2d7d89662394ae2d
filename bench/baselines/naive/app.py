"""Issue 14's naive Python baseline: Flask + PyJWT ``decode`` + a Redis ``GET`` of the secret.

Run under gunicorn, sync workers (``gunicorn -k sync -w N bench.baselines.naive.app:app``).
GET /v1/verify looks the tenant's secret up in Redis by the token header's ``kid`` (one GET
per request, no cache), then PyJWT checks the signature (HS256 only, never the token's own
``alg``), ``exp``, ``iss`` and ``aud``. Nothing else: no revocation, no key version, no ``tid``
check, no rate limit, no logs, no metrics. Configured by BENCH_REDIS_URL, BENCH_ISSUER and
BENCH_AUDIENCE (default ``tenantauth``).
"""

from __future__ import annotations

import os

import jwt
import redis
from flask import Flask, jsonify, request

PREFIX = "tenant-secret:"
app = Flask(__name__)
_redis: list[redis.Redis] = []  # one client per worker, made after gunicorn forks


def _client() -> redis.Redis:
    if not _redis:
        _redis.append(redis.Redis.from_url(os.environ["BENCH_REDIS_URL"]))
    return _redis[0]


@app.get("/readyz")
def readyz() -> object:
    """Always ready."""
    return {"status": "ok"}


def _secret(token: str) -> bytes:
    """Return the secret of the token header's ``kid``; raise InvalidTokenError if none."""
    kid = jwt.get_unverified_header(token).get("kid")
    secret = _client().get(PREFIX + kid) if isinstance(kid, str) else None
    if secret is None:
        raise jwt.InvalidTokenError("unknown kid")
    return bytes(secret)


@app.get("/v1/verify")
def verify() -> object:
    """Verify the bearer token: 200 with its tenant, subject and scope, else 401."""
    header = request.headers.get("Authorization", "")
    token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""
    try:  # an empty token fails as a DecodeError, an InvalidTokenError
        kid = jwt.get_unverified_header(token).get("kid")
        claims = jwt.decode(
            token,
            _secret(token),
            algorithms=["HS256"],
            issuer=f"{os.environ['BENCH_ISSUER']}/v1/tenants/{kid}",  # the tenant's issuer
            audience=os.environ.get("BENCH_AUDIENCE", "tenantauth"),
            options={"require": ["exp", "iss", "aud"]},
        )
    except jwt.InvalidTokenError:
        return jsonify(error="invalid_token"), 401, {"WWW-Authenticate": "Bearer"}
    return {"tenant": claims.get("tid"), "sub": claims.get("sub"), "scope": claims.get("scope")}
