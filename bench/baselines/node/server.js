'use strict';
/**
 * Issue 14's Node baseline: the "tenant secrets" stack tenantauth is measured against.
 *
 * A cluster of WORKERS processes (default: one per core), each an Express app answering
 * GET /v1/verify: the secret is looked up in Redis by the token header's `kid` (one GET per
 * request, no cache), then jsonwebtoken verifies the signature (HS256 only, never the token's
 * own `alg`), `exp`, `iss` and `aud`. Nothing else: no revocation, no key version, no `tid`
 * check, no rate limit, no logs, no metrics.
 *
 *   PORT=… REDIS_URL=redis://127.0.0.1:6379/3 ISSUER=https://auth.test \
 *     SECRET_FORM=keyobject node server.js
 *
 * SECRET_FORM=string passes the secret to jsonwebtoken as a string (as `jwt.verify(token,
 * secret)` is usually written); keyobject wraps it in crypto.createSecretKey first.
 */

const cluster = require('node:cluster');
const crypto = require('node:crypto');
const os = require('node:os');
const express = require('express');
const jwt = require('jsonwebtoken');
const { createClient } = require('redis');

const {
  PORT = '8000',
  HOST = '127.0.0.1',
  REDIS_URL = 'redis://127.0.0.1:6379/0',
  ISSUER,
  AUDIENCE = 'tenantauth',
  SECRET_FORM = 'keyobject',
  WORKERS = String(os.availableParallelism()),
} = process.env;
const PREFIX = 'tenant-secret:';

if (cluster.isPrimary) {
  for (let i = 0; i < Number(WORKERS); i += 1) cluster.fork();
  cluster.on('exit', (worker, code) => {
    console.error(`worker ${worker.process.pid} exited (${code})`);
    process.exitCode = 1;
  });
  process.on('SIGTERM', () => {
    for (const worker of Object.values(cluster.workers)) worker.kill('SIGTERM');
  });
} else {
  serve();
}

function serve() {
  const redis = createClient({ url: REDIS_URL });
  const options = { algorithms: ['HS256'], audience: AUDIENCE };
  const asKey = SECRET_FORM === 'string' ? (s) => s : (s) => crypto.createSecretKey(Buffer.from(s));
  const unauthorized = (res) => res.status(401).set('WWW-Authenticate', 'Bearer').json({ error: 'invalid_token' });

  const app = express();
  app.disable('x-powered-by');
  app.get('/readyz', (req, res) => res.json({ status: 'ok' }));
  app.get('/v1/verify', async (req, res) => {
    const match = /^Bearer (\S+)$/.exec(req.get('authorization') || '');
    const decoded = match && jwt.decode(match[1], { complete: true });
    const kid = decoded && decoded.header.kid;
    if (typeof kid !== 'string') return unauthorized(res);
    let secret;
    try {
      secret = await redis.get(PREFIX + kid);
    } catch {
      return res.status(503).json({ error: 'unavailable' });
    }
    if (secret === null) return unauthorized(res);
    try {
      // the tenant's issuer, as tenantauth's tokens carry it
      const issuer = `${ISSUER}/v1/tenants/${kid}`;
      const claims = jwt.verify(match[1], asKey(secret), { ...options, issuer });
      return res.json({ tenant: kid, sub: claims.sub, scope: claims.scope });
    } catch {
      return unauthorized(res);
    }
  });

  redis.on('error', (err) => console.error(`redis: ${err.message}`));
  redis.connect().then(() => {
    const server = app.listen(Number(PORT), HOST);
    process.on('SIGTERM', () => server.close(() => redis.quit().finally(() => process.exit(0))));
  });
}
