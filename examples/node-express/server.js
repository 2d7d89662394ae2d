'use strict';
/**
 * An example service protected by tenantauth: `node server.js` with
 *   TENANTAUTH_URL=http://127.0.0.1:8000   where tenantauth listens (required)
 *   AUDIENCE=orders                         optional: only tokens whose `aud` holds it
 *   PORT=3000                               where this service listens
 *
 *   GET  /healthz      public
 *   GET  /api/whoami   any valid token: the verified tenant, subject and scope
 *   GET  /api/orders   scope "read"
 *   POST /api/orders   scope "write"
 */

const express = require('express');
const { tenantAuth, requireScope } = require('./lib/tenantauth');

/**
 * Build the app. `options` go to tenantAuth() (`url`, `audience`, `timeoutMs`, `logger` …).
 * Returns the Express app; `app.locals.close()` closes tenantauth keep-alive connections.
 */
function createApp(options) {
  const app = express();
  app.disable('x-powered-by');
  const auth = tenantAuth({ realm: 'orders', ...options });
  app.locals.close = auth.close;

  app.get('/healthz', (req, res) => res.json({ ok: true }));
  app.use('/api', auth); // everything under /api needs a valid token

  app.get('/api/whoami', (req, res) => {
    const { tenant, subject, scope } = req.auth;
    // Echoes what a handler can see of a client-sent X-Tenant-Id (the middleware deletes it).
    res.json({ tenant, subject, scope, clientTenantHeader: req.get('x-tenant-id') ?? null });
  });
  app.get('/api/orders', requireScope('read'), (req, res) => {
    // Every query is scoped by the *verified* tenant, never by anything the client sent.
    res.json({ tenant: req.auth.tenant, orders: [] });
  });
  app.post('/api/orders', requireScope('write'), (req, res) => {
    res.status(201).json({ tenant: req.auth.tenant, createdBy: req.auth.subject });
  });
  return app;
}

if (require.main === module) {
  const url = process.env.TENANTAUTH_URL;
  if (!url) {
    console.error('Set TENANTAUTH_URL, e.g. TENANTAUTH_URL=http://127.0.0.1:8000');
    process.exit(2);
  }
  const app = createApp({ url, audience: process.env.AUDIENCE || undefined });
  const port = Number(process.env.PORT || 3000);
  const server = app.listen(port, '127.0.0.1', () => {
    console.log(`listening on http://127.0.0.1:${port} (tenantauth at ${url})`);
  });
  process.on('SIGTERM', () => server.close(() => app.locals.close()));
}

module.exports = { createApp };
