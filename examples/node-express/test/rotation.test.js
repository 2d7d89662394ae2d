'use strict';
// Revocation reaches the middleware at once: rotate the tenant through the admin API and the
// very next request with an old token is refused. Tenant ROTATE_TENANT is used by this file only.

const test = require('node:test');
const assert = require('node:assert/strict');
const { env, startApp, request, bearer, admin } = require('./support');

test('rotating the tenant makes the very next request with its old token 401', async () => {
  const tenant = env('ROTATE_TENANT');
  const token = env('TOKEN_ROTATE');
  const app = await startApp();
  try {
    const before = await request(app.base, '/api/whoami', { headers: bearer(token) });
    assert.deepEqual([before.status, before.body.tenant], [200, tenant]);

    const rotated = await admin('POST', `/v1/admin/tenants/${tenant}/rotate`);
    assert.equal(rotated.status, 200);
    assert.equal(rotated.body.key_version, 2);

    const after = await request(app.base, '/api/whoami', { headers: bearer(token) });
    assert.equal(after.status, 401);
    assert.equal(after.headers['www-authenticate'], 'Bearer realm="orders", error="invalid_token"');

    // The tenant itself keeps working: a token issued after the rotation passes.
    const issued = await admin('POST', `/v1/admin/tenants/${tenant}/tokens`, {
      sub: 'carol',
      scope: 'read',
    });
    assert.equal(issued.status, 201);
    const fresh = await request(app.base, '/api/whoami', {
      headers: bearer(issued.body.access_token),
    });
    assert.deepEqual([fresh.status, fresh.body.subject], [200, 'carol']);
  } finally {
    await app.close();
  }
});
