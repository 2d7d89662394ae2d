'use strict';
// The middleware against a real tenantauth: valid, missing, malformed and forged tokens,
// spoofed identity headers, scopes, audience, keep-alive, and what it logs.
// Tenants acme and globex are seeded by tests/e2e/test_node_express.py and never rotated.

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const diagnosticsChannel = require('node:diagnostics_channel');
const crypto = require('node:crypto');
const jwt = require('jsonwebtoken');
const { env, startApp, request, bearer } = require('./support');

const READ = env('TOKEN_READ'); // acme, alice, "read"
const READ_WRITE = env('TOKEN_READ_WRITE'); // acme, alice, "read write"
const OTHER_TENANT = env('TOKEN_OTHER_TENANT'); // globex, bob, "read"
const AUDIENCE_ORDERS = env('TOKEN_AUDIENCE_ORDERS'); // acme, alice, "read", aud "orders"

let app;
test.before(async () => {
  app = await startApp();
});
test.after(() => app.close());

/** Assert the uniform 401 of a refused credential; `invalid` says whether error= is present. */
function assertUnauthorized(reply, invalid = true) {
  assert.equal(reply.status, 401);
  const challenge = invalid
    ? 'Bearer realm="orders", error="invalid_token"'
    : 'Bearer realm="orders"';
  assert.equal(reply.headers['www-authenticate'], challenge);
  assert.match(reply.headers['content-type'], /^application\/problem\+json/);
  assert.deepEqual(reply.body, {
    type: 'about:blank',
    title: 'Unauthorized',
    status: 401,
    detail: 'A valid bearer token is required.',
    code: 'invalid_token',
  });
}

/** Sign `claims` for acme with `key`, as a complete tenantauth-shaped token would be. */
function acmeToken(key, extra = {}) {
  return jwt.sign({ tid: 'acme', scope: 'read', ...extra }, key, {
    algorithm: 'HS256',
    keyid: 'acme',
    issuer: env('TENANTAUTH_ISSUER'),
    audience: 'tenantauth',
    subject: 'alice',
    jwtid: crypto.randomUUID(),
    expiresIn: 300,
  });
}

test('a valid token reaches the handler with the verified tenant, subject and scope', async () => {
  const reply = await request(app.base, '/api/whoami', { headers: bearer(READ) });
  assert.equal(reply.status, 200);
  assert.deepEqual(reply.body, {
    tenant: 'acme',
    subject: 'alice',
    scope: 'read',
    clientTenantHeader: null,
  });
  const orders = await request(app.base, '/api/orders', { headers: bearer(READ) });
  assert.deepEqual([orders.status, orders.body], [200, { tenant: 'acme', orders: [] }]);
});

test('no Authorization header is 401 with a Bearer challenge without error code', async () => {
  assertUnauthorized(await request(app.base, '/api/whoami'), false);
});

test('garbage and malformed credentials are 401 invalid_token, all alike', async () => {
  const headers = [
    'Bearer garbage',
    'Bearer a.b.c',
    'Bearer {"protected": "x", "signature": "y"}', // JWS JSON serialization
    'Bearer a,b',
    `Basic ${Buffer.from('alice:pw').toString('base64')}`,
    'Bearer',
    `Bearer ${READ} extra`,
    `Bearer ${'A'.repeat(9000)}`,
    [`Bearer ${READ}`, `Bearer ${READ}`], // two Authorization header lines
  ];
  for (const authorization of headers) {
    const reply = await request(app.base, '/api/whoami', { headers: { authorization } });
    assertUnauthorized(reply);
  }
});

test('forged, tampered and alg=none tokens are 401 invalid_token', async () => {
  const b64url = (text) => Buffer.from(text).toString('base64url');
  const [header, payload, signature] = READ.split('.');
  const tampered = b64url(JSON.stringify({ tid: 'globex', sub: 'alice' }));
  const none = `${b64url('{"alg":"none","typ":"JWT","kid":"acme"}')}.${payload}.`;
  const forged = [acmeToken(crypto.randomBytes(32)), `${header}.${tampered}.${signature}`, none];
  for (const token of forged) {
    assertUnauthorized(await request(app.base, '/api/whoami', { headers: bearer(token) }));
  }
});

test('a client-sent X-Tenant-Id (or X-Subject, X-Scope) is never trusted', async () => {
  const spoofed = {
    ...bearer(OTHER_TENANT),
    'x-tenant-id': 'acme',
    'x-subject': 'alice',
    'x-scope': 'read write',
  };
  const reply = await request(app.base, '/api/whoami', { headers: spoofed });
  assert.equal(reply.status, 200);
  assert.deepEqual(reply.body, {
    tenant: 'globex',
    subject: 'bob',
    scope: 'read',
    clientTenantHeader: null,
  });
  const write = await request(app.base, '/api/orders', { method: 'POST', headers: spoofed });
  assert.equal(write.status, 403); // X-Scope: write did not grant anything
  // Without a token the spoofed headers get nothing at all.
  const bare = { 'x-tenant-id': 'acme', 'x-subject': 'alice' };
  assertUnauthorized(await request(app.base, '/api/whoami', { headers: bare }), false);
});

test('requireScope answers 403 insufficient_scope for a token without the scope', async () => {
  const reply = await request(app.base, '/api/orders', { method: 'POST', headers: bearer(READ) });
  assert.equal(reply.status, 403);
  assert.equal(
    reply.headers['www-authenticate'],
    'Bearer realm="orders", error="insufficient_scope", scope="write"',
  );
  assert.equal(reply.body.code, 'insufficient_scope');
  const allowed = await request(app.base, '/api/orders', {
    method: 'POST',
    headers: bearer(READ_WRITE),
  });
  assert.deepEqual([allowed.status, allowed.body], [201, { tenant: 'acme', createdBy: 'alice' }]);
});

test('with an audience configured, only tokens for that audience pass', async () => {
  const orders = await startApp({ audience: 'orders' });
  try {
    const ok = await request(orders.base, '/api/whoami', { headers: bearer(AUDIENCE_ORDERS) });
    assert.deepEqual([ok.status, ok.body.tenant], [200, 'acme']);
    assertUnauthorized(await request(orders.base, '/api/whoami', { headers: bearer(READ) }));
  } finally {
    await orders.close();
  }
});

test('verifications reuse one keep-alive connection to tenantauth', async () => {
  const agent = new http.Agent({ keepAlive: true });
  let connections = 0;
  const create = agent.createConnection.bind(agent);
  agent.createConnection = (...args) => {
    connections += 1;
    return create(...args);
  };
  // tenantauth may answer `Connection: close` to move a connection to a less loaded worker
  // (src/tenantauth/granian_balance.py): this suite's other app holds a connection too, and
  // both can land on one worker. A new connection after such an answer is the server's
  // choice; any other new connection, or a request asking to close, is the client's fault.
  const answers = [];
  const onResponse = ({ request: sent, response }) => {
    if (sent.agent !== agent) return;
    answers.push({ asked: sent.getHeader('connection'), closed: response.headers.connection });
  };
  diagnosticsChannel.subscribe('http.client.response.finish', onResponse);
  const pooled = await startApp({ agent });
  try {
    for (let i = 0; i < 5; i += 1) {
      const reply = await request(pooled.base, '/api/whoami', { headers: bearer(READ) });
      assert.equal(reply.status, 200);
    }
    assert.deepEqual(
      answers.map(({ asked }) => asked),
      [undefined, undefined, undefined, undefined, undefined],
    );
    const closedByServer = answers.slice(0, -1).filter(({ closed }) => closed === 'close').length;
    assert.equal(connections, 1 + closedByServer);
  } finally {
    diagnosticsChannel.unsubscribe('http.client.response.finish', onResponse);
    await pooled.close();
    agent.destroy();
  }
});

test('the middleware never logs a token, and logs why it refused', async () => {
  const watched = await startApp();
  const tokens = [READ, OTHER_TENANT, acmeToken(crypto.randomBytes(32)), 'not-a-jwt'];
  try {
    for (const token of tokens)
      await request(watched.base, '/api/whoami', { headers: bearer(token) });
    await request(watched.base, '/api/whoami', { headers: { authorization: 'Bearer a,b' } });
  } finally {
    await watched.close();
  }
  const text = JSON.stringify(watched.logs);
  for (const token of tokens) {
    assert.ok(!text.includes(token), 'a token was logged');
    for (const part of token.split('.').filter((p) => p.length > 8))
      assert.ok(!text.includes(part));
  }
  const reasons = watched.logs.map(([, fields]) => fields.reason);
  assert.deepEqual(reasons, ['invalid', 'invalid', 'malformed']);
});
