#!/usr/bin/env node
// Verify tenantauth access tokens offline with jose, starting from nothing but the tenant's
// issuer URL: discovery -> jwks_uri -> the public key named by the token's `kid`.
//
//   node verify.js <issuer-url> <token>     (or `-` for the token: read it from stdin)
//
// prints the verified payload as JSON and exits 0, or prints one `error: ...` line on stderr
// and exits 1 (2 for a usage error). As a module:
//
//   import { createVerifier } from './verify.js';
//   const verify = await createVerifier('https://auth.example.com/v1/tenants/acme');
//   const claims = await verify(token);   // throws when the token is not valid

import { realpathSync } from 'node:fs';
import { text } from 'node:stream/consumers';
import { fileURLToPath } from 'node:url';
import { createRemoteJWKSet, jwtVerify } from 'jose';

/** The `aud` of tenantauth tokens issued without one (its TENANTAUTH_DEFAULT_AUDIENCE). */
export const AUDIENCE = 'tenantauth';
/** What tenantauth signs key-pair tenants' tokens with. Never a secret-key alg (RFC 8725 §3.1). */
export const ALGORITHMS = ['EdDSA', 'ES256', 'RS256'];
/** How long a JWK Set copy is used: tenantauth's `Cache-Control: max-age=300` (jose: 10 min). */
export const JWKS_MAX_AGE_MS = 300_000;
/** Least time between two fetches forced by an unknown `kid` (jose: 30 s; see README). */
export const COOLDOWN_MS = 1_000;
const TIMEOUT_MS = 5_000;

/** Thrown when the issuer's metadata cannot be fetched or does not describe that issuer. */
export class DiscoveryError extends Error {
  code = 'ERR_DISCOVERY';
}

/**
 * Fetch `${issuer}/.well-known/openid-configuration` and return the metadata, after checking
 * that its `issuer` is exactly `issuer` (OpenID Connect Discovery §4.3, RFC 8414 §3.3) and that
 * it names a `jwks_uri`. Throws DiscoveryError otherwise.
 */
export async function discover(issuer) {
  const url = `${issuer}/.well-known/openid-configuration`;
  let response;
  try {
    response = await fetch(url, {
      headers: { accept: 'application/json' },
      redirect: 'error',
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    throw new DiscoveryError(`${url}: ${err.cause?.message ?? err.message}`);
  }
  if (response.status !== 200) {
    throw new DiscoveryError(`${url} answered HTTP ${response.status}`);
  }
  const metadata = await response.json().catch(() => null);
  if (metadata?.issuer !== issuer) {
    throw new DiscoveryError(`${url} describes issuer ${JSON.stringify(metadata?.issuer)}`);
  }
  if (typeof metadata.jwks_uri !== 'string') {
    throw new DiscoveryError(`${url} names no jwks_uri`);
  }
  return metadata;
}

/**
 * Discover `issuer` once and return `verify(token)`: an async function that resolves to the
 * token's payload, or throws (a jose error: its `code` says why) when the signature, `iss`,
 * `aud`, `exp` or `nbf` is wrong. Create one per issuer at startup and reuse it: it keeps the
 * issuer's JWK Set for JWKS_MAX_AGE_MS and fetches it again early for an unknown `kid`.
 */
export async function createVerifier(issuer, { audience = AUDIENCE } = {}) {
  const metadata = await discover(issuer);
  const jwks = createRemoteJWKSet(new URL(metadata.jwks_uri), {
    cacheMaxAge: JWKS_MAX_AGE_MS,
    cooldownDuration: COOLDOWN_MS,
    timeoutDuration: TIMEOUT_MS,
  });
  return async function verify(token) {
    const { payload } = await jwtVerify(token, jwks, { issuer, audience, algorithms: ALGORITHMS });
    return payload;
  };
}

async function main([issuer, token, ...rest]) {
  if (!issuer || !token || rest.length > 0) {
    console.error('usage: node verify.js <issuer-url> <token | ->');
    return 2;
  }
  try {
    const verify = await createVerifier(issuer);
    const jwt = token === '-' ? (await text(process.stdin)).trim() : token;
    console.log(JSON.stringify(await verify(jwt)));
    return 0;
  } catch (err) {
    console.error(`error: ${err.code ?? err.name}: ${err.message}`); // never the token itself
    return 1;
  }
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
