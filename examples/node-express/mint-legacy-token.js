'use strict';
/**
 * Mint a token the way a service of the "tenant secrets" pattern does (jsonwebtoken and the
 * tenant's secret), shaped so that tenantauth accepts it once the secret is imported:
 *
 *   TENANT_SECRET='…' TENANTAUTH_ISSUER=http://127.0.0.1:8000 \
 *     node mint-legacy-token.js TENANT SUBJECT [SCOPE]
 *
 * TENANT_SECRET is used as a string (its UTF-8 bytes are the HMAC key), as `jwt.sign(payload,
 * 'secret')` does. See README.md, "What a token minted outside tenantauth must carry".
 */

const crypto = require('node:crypto');
const jwt = require('jsonwebtoken');

/**
 * The tenant's issuer identifier: tenantauth's TENANTAUTH_ISSUER + /v1/tenants/<tenant>, which
 * its tokens carry as `iss` and its metadata names as `issuer` (RFC 8414 §3.3).
 */
function tenantIssuer(issuer, tenant) {
  return `${issuer.replace(/\/+$/, '')}/v1/tenants/${tenant}`;
}

/**
 * Return an HS256 JWT for `tenant`/`subject` signed with `secret` (string or Buffer), carrying
 * what tenantauth requires: header {alg: HS256, typ: JWT, kid: tenant}; claims iss (the
 * tenant's issuer under `issuer`, tenantauth's TENANTAUTH_ISSUER), sub, aud, exp, iat, jti,
 * tid (= kid) and, if given, scope. Lifetime `ttl` seconds (≤ 86400 by default).
 */
function mintLegacyToken(
  secret,
  { tenant, subject, scope, issuer, audience = 'tenantauth', ttl = 900 },
) {
  const claims = scope ? { tid: tenant, scope } : { tid: tenant };
  return jwt.sign(claims, secret, {
    algorithm: 'HS256', // header alg; jsonwebtoken adds typ: "JWT" itself
    keyid: tenant, // header kid: tenantauth looks the secret up by it
    issuer: tenantIssuer(issuer, tenant), // iss: exactly the tenant's issuer
    audience, // aud: required; "tenantauth" is TENANTAUTH_DEFAULT_AUDIENCE
    subject, // sub
    jwtid: crypto.randomUUID(), // jti: required (the handle for revoking one token)
    expiresIn: ttl, // exp; jsonwebtoken sets iat (both integers)
  });
}

if (require.main === module) {
  const [tenant, subject, scope] = process.argv.slice(2);
  const { TENANT_SECRET: secret, TENANTAUTH_ISSUER: issuer } = process.env;
  if (!tenant || !subject || !secret || !issuer) {
    console.error(
      'usage: TENANT_SECRET=… TENANTAUTH_ISSUER=… node mint-legacy-token.js TENANT SUBJECT [SCOPE]',
    );
    process.exit(2);
  }
  console.log(mintLegacyToken(secret, { tenant, subject, scope, issuer }));
}

module.exports = { mintLegacyToken, tenantIssuer };
