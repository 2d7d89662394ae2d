'use strict';
// Fail closed: whenever tenantauth cannot give an answer (stopped, hanging, broken), the
// request is refused with 503 and the handler never runs. The stand-ins below are local
// servers that misbehave on purpose; the real tenantauth's answers are in the other files.

const test = require('node:test');
const assert = require('node:assert/strict');
const { env, startApp, listen, request, bearer, closedPort } = require('./support');

const READ = env('TOKEN_READ');

/** Assert a fail-closed 503 (no challenge: the client's credentials were not judged). */
function assertUnavailable(reply) {
  assert.equal(reply.status, 503);
  assert.equal(reply.headers['retry-after'], '1');
  assert.equal(reply.headers['www-authenticate'], undefined);
  assert.match(reply.headers['content-type'], /^application\/problem\+json/);
  assert.equal(reply.body.code, 'verifier_unavailable');
}

/** Start the app against `handler` (a stand-in tenantauth); return `{app, stub, close}`. */
async function againstStub(handler, options = {}) {
  const stub = await listen(handler);
  const app = await startApp({ url: `http://127.0.0.1:${stub.address().port}`, ...options });
  const close = async () => {
    await app.close();
    stub.closeAllConnections();
    stub.close();
  };
  return { app, stub, close };
}

/** What tenantauth answers for a valid acme token (the shape the middleware checks). */
function validAnswer(res) {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ active: true, claims: { tid: 'acme', sub: 'alice', scope: 'read' } }));
}

test('tenantauth unreachable (closed port): 503, fail closed', async () => {
  const app = await startApp({ url: `http://127.0.0.1:${await closedPort()}` });
  try {
    const reply = await request(app.base, '/api/whoami', { headers: bearer(READ) });
    assertUnavailable(reply);
    assert.deepEqual(
      app.logs.map(([level, fields]) => [level, fields.reason]),
      [['warn', 'ECONNREFUSED']],
    );
  } finally {
    await app.close();
  }
});

test('tenantauth too slow: 503 once the timeout passes', async () => {
  const { app, close } = await againstStub(() => {}, { timeoutMs: 300 }); // never answers
  try {
    const started = Date.now();
    assertUnavailable(await request(app.base, '/api/whoami', { headers: bearer(READ) }));
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 250 && elapsed < 2000, `answered after ${elapsed} ms`);
    assert.equal(app.logs[0][1].reason, 'ETIMEDOUT');
  } finally {
    await close();
  }
});

test('any answer but 200 or 401 (500, 503, 400, 403, 302) is 503, never a pass', async () => {
  for (const status of [500, 503, 400, 403, 302]) {
    const { app, close } = await againstStub((req, res) => {
      res.statusCode = status;
      res.end();
    });
    try {
      assertUnavailable(await request(app.base, '/api/whoami', { headers: bearer(READ) }));
      assert.equal(app.logs[0][1].reason, `status ${status}`);
    } finally {
      await close();
    }
  }
});

test('a 200 that does not say active with a tenant and subject is 503', async () => {
  const bodies = [
    'not json',
    '{"active": false, "claims": {}}',
    '{"active": true}',
    '{"active": true, "claims": {"sub": "alice"}}',
    '{"active": true, "claims": {"tid": "acme", "sub": "alice", "scope": ["read"]}}',
  ];
  for (const body of bodies) {
    const { app, close } = await againstStub((req, res) => res.end(body));
    try {
      assertUnavailable(await request(app.base, '/api/whoami', { headers: bearer(READ) }));
    } finally {
      await close();
    }
  }
});

test('a keep-alive socket the server closed is retried once on a new connection', async () => {
  // The stand-in answers the first request of each connection and resets the connection on
  // the second, as a server closing an idle socket just as a request arrives would.
  let connections = 0;
  const served = new WeakMap();
  const { app, stub, close } = await againstStub((req, res) => {
    const count = (served.get(req.socket) ?? 0) + 1;
    served.set(req.socket, count);
    if (count > 1) return req.socket.destroy();
    validAnswer(res);
  });
  stub.on('connection', () => {
    connections += 1;
  });
  try {
    for (let i = 0; i < 2; i += 1) {
      const reply = await request(app.base, '/api/whoami', { headers: bearer(READ) });
      assert.equal(reply.status, 200);
    }
    assert.equal(connections, 2);
  } finally {
    await close();
  }
});

test('a fresh connection that fails is not retried: 503', async () => {
  let connections = 0;
  const { app, stub, close } = await againstStub((req) => req.socket.destroy());
  stub.on('connection', () => {
    connections += 1;
  });
  try {
    assertUnavailable(await request(app.base, '/api/whoami', { headers: bearer(READ) }));
    assert.equal(connections, 1);
  } finally {
    await close();
  }
});
