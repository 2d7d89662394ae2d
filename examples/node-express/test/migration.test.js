'use strict';
// Migrating from the "tenant secrets" pattern (README.md): each service held every tenant's
// secret and verified with jsonwebtoken. Import the secret into tenantauth, verify through the
// middleware, rotate. Each test creates its own tenant (legacy-<random>) through the admin API.

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const jwt = require('jsonwebtoken');
const { mintLegacyToken, tenantIssuer } = require('../mint-legacy-token');
const { env, startApp, request, bearer, admin } = require('./support');

const ISSUER = env('TENANTAUTH_ISSUER');

/**
 * The old stack: services that sign and verify with the tenant secrets they hold. `sign` makes
 * a token that also meets tenantauth's rules (README.md, "What an imported token must carry").
 */
class OldStack {
  constructor(secrets) {
    this.secrets = secrets; // tenant id -> secret (a Buffer, or the string the services used)
  }

  /** Sign for `tenant`; `options` (jsonwebtoken's, `undefined` drops one) and `claims` override. */
  sign(tenant, subject, scope, options = {}, claims = {}) {
    const merged = {
      algorithm: 'HS256',
      keyid: tenant,
      issuer: tenantIssuer(ISSUER, tenant),
      audience: 'tenantauth',
      subject,
      jwtid: crypto.randomUUID(),
      expiresIn: 600,
      ...options,
    };
    for (const [name, value] of Object.entries(merged))
      if (value === undefined) delete merged[name];
    return jwt.sign({ tid: tenant, scope, ...claims }, this.secrets[tenant], merged);
  }

  verify(token) {
    const { header } = jwt.decode(token, { complete: true });
    return jwt.verify(token, this.secrets[header.kid], { algorithms: ['HS256'] });
  }
}

function legacyTenant() {
  return `legacy-${crypto.randomBytes(4).toString('hex')}`;
}

/** Import `secret` (Buffer or string: its UTF-8 bytes are the HMAC key) as tenant `id`. */
function importTenant(id, secret) {
  const raw = Buffer.isBuffer(secret) ? secret : Buffer.from(secret, 'utf8');
  return admin('POST', '/v1/admin/tenants', {
    id,
    name: `Imported ${id}`,
    secret: raw.toString('base64url'),
  });
}

let app;
test.before(async () => {
  app = await startApp();
});
test.after(() => app.close());

async function whoami(token) {
  return request(app.base, '/api/whoami', { headers: bearer(token) });
}

test('an old-stack token verifies after importing its secret, and dies at rotation', async () => {
  const tenant = legacyTenant();
  const oldStack = new OldStack({ [tenant]: crypto.randomBytes(32) });
  const token = mintLegacyToken(oldStack.secrets[tenant], {
    tenant,
    subject: 'dave',
    scope: 'read write',
    issuer: ISSUER,
  });
  assert.equal(oldStack.verify(token).sub, 'dave'); // how the services verified until now
  assert.equal((await whoami(token)).status, 401); // tenantauth does not know the tenant yet

  const imported = await importTenant(tenant, oldStack.secrets[tenant]);
  assert.equal(imported.status, 201);
  assert.equal(imported.body.key_version, 1);
  assert.equal(imported.body.secret, undefined); // never returned

  const reply = await whoami(token);
  assert.equal(reply.status, 200);
  assert.deepEqual(reply.body, {
    tenant,
    subject: 'dave',
    scope: 'read write',
    clientTenantHeader: null,
  });

  const rotated = await admin('POST', `/v1/admin/tenants/${tenant}/rotate`);
  assert.equal(rotated.status, 200);
  assert.equal((await whoami(token)).status, 401);
  // The secret the services held is now worthless: nothing it signs is accepted.
  assert.equal((await whoami(oldStack.sign(tenant, 'dave', 'read write'))).status, 401);
  // Not even with the new key version (claim kv) that tokens of the new secret carry.
  assert.equal((await whoami(oldStack.sign(tenant, 'dave', 'read', {}, { kv: 2 }))).status, 401);
});

test('a string secret (jwt.sign(payload, "…")) is imported as its UTF-8 bytes', async () => {
  const tenant = legacyTenant();
  const passphrase = `${crypto.randomBytes(24).toString('hex')}-the-old-services-secret`;
  assert.equal((await importTenant(tenant, passphrase)).status, 201);
  const reply = await whoami(
    mintLegacyToken(passphrase, { tenant, subject: 'erin', scope: 'read', issuer: ISSUER }),
  );
  assert.deepEqual([reply.status, reply.body.tenant, reply.body.subject], [200, tenant, 'erin']);
});

test('a secret shorter than 32 bytes cannot be imported (422)', async () => {
  const reply = await importTenant(legacyTenant(), 'changeme-changeme-changeme');
  assert.equal(reply.status, 422);
  assert.match(reply.body.detail, /at least 32 bytes/);
});

test('an old-stack token passes only with every claim and header tenantauth requires', async () => {
  const tenant = legacyTenant();
  const oldStack = new OldStack({ [tenant]: crypto.randomBytes(32) });
  assert.equal((await importTenant(tenant, oldStack.secrets[tenant])).status, 201);
  const now = Math.floor(Date.now() / 1000);
  const refused = {
    'no kid header': { keyid: undefined },
    'kid not the tenant id': { keyid: tenant.toUpperCase() },
    'typ other than JWT': { header: { typ: 'at+jwt' } },
    'an extra header parameter': { header: { cty: 'JWT' } },
    'HS384 instead of HS256': { algorithm: 'HS384' },
    'no jti': { jwtid: undefined },
    'no iat': { noTimestamp: true },
    'no exp': { expiresIn: undefined },
    'lifetime over TENANTAUTH_MAX_TOKEN_TTL': { expiresIn: 86_401 },
    'no aud': { audience: undefined },
    'another issuer': { issuer: 'https://old-stack.example' },
    "the service's base URL as issuer": { issuer: ISSUER },
    "another tenant's issuer": { issuer: tenantIssuer(ISSUER, 'someone-else') },
    'no sub': { subject: undefined },
  };
  assert.equal((await whoami(oldStack.sign(tenant, 'frank', 'read'))).status, 200);
  for (const [what, options] of Object.entries(refused)) {
    const token = oldStack.sign(tenant, 'frank', 'read', options);
    assert.equal((await whoami(token)).status, 401, what);
  }
  const claims = {
    'no tid': { tid: undefined },
    'tid of another tenant': { tid: 'acme' },
    'exp not an integer': { exp: now + 300.5 },
    'scope not a string': { scope: ['read'] },
  };
  const options = { expiresIn: undefined }; // iat and exp come from the claims below
  const baseline = oldStack.sign(tenant, 'frank', 'read', options, { iat: now, exp: now + 300 });
  assert.equal((await whoami(baseline)).status, 200);
  for (const [what, override] of Object.entries(claims)) {
    const token = oldStack.sign(tenant, 'frank', 'read', options, {
      iat: now,
      exp: now + 300,
      ...override,
    });
    assert.equal((await whoami(token)).status, 401, what);
  }
});
