'use strict';
/**
 * Express middleware: verify the request's bearer token through tenantauth (`GET /v1/verify`)
 * and put the verified identity on `req.auth`.
 *
 *   const auth = tenantAuth({ url: 'http://tenantauth:8000', audience: 'orders' });
 *   app.use('/api', auth);
 *   app.post('/api/orders', requireScope('write'), handler);   // req.auth.tenant, .subject ...
 *
 * Answers (RFC 6750 §3, bodies are RFC 9457 problem+json):
 *   401 + `WWW-Authenticate: Bearer realm="…"`           no Authorization header
 *   401 + `WWW-Authenticate: Bearer realm="…", error="invalid_token"`  anything else refused:
 *       not `Bearer <b64token>`, several Authorization headers, or tenantauth said 401
 *       (bad signature, expired, revoked, rotated, wrong audience, unknown tenant …) — one
 *       body for all, so a client cannot tell which check failed
 *   503 + `Retry-After`   tenantauth unreachable, too slow, or answering anything but 200/401:
 *       fail closed, never let a request through unverified
 *   403 + `error="insufficient_scope"`  from requireScope()
 *
 * The token is never logged: log lines carry an event name, a reason and the token's length.
 */

const { TenantAuthVerifier, VerifierUnavailableError } = require('./verifier');

// Identity headers a gateway in front of tenantauth would set. A client can send them too, so
// they are deleted: the only identity a handler may use is `req.auth`.
const IDENTITY_HEADERS = ['x-tenant-id', 'x-subject', 'x-scope'];
// RFC 6750 §2.1 (the scheme is case-insensitive, RFC 9110 §11.1).
const BEARER = /^bearer +([A-Za-z0-9\-._~+/]+=*)$/i;
const PROBLEM = 'application/problem+json';
const RETRY_AFTER_SECONDS = '1';
// RFC 6750 §3: realm is a quoted-string, scope tokens are NQCHAR (RFC 6749 §3.3); refusing
// quotes and backslashes up front keeps WWW-Authenticate well-formed without escaping.
const REALM = /^[\x20\x21\x23-\x5b\x5d-\x7e]+$/;
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/**
 * Return the middleware. Options: `url` (required unless `verifier` is given), `audience`,
 * `timeoutMs` (default 2000), `realm` (default "api"), `logger` (`info`/`warn` taking
 * `(fields, message)`; default `console`), `agent`, `verifier` (a shared TenantAuthVerifier).
 * The middleware has `.verifier` and `.close()` (closes the keep-alive connections).
 */
function tenantAuth(options = {}) {
  const verifier = options.verifier ?? new TenantAuthVerifier(options);
  const realm = options.realm ?? 'api';
  if (!REALM.test(realm)) {
    throw new TypeError('tenantAuth: realm must be printable ASCII without " or \\');
  }
  const logger = options.logger ?? console;
  const audience = options.audience;

  function middleware(req, res, next) {
    for (const name of IDENTITY_HEADERS) delete req.headers[name];
    res.locals.tenantauthRealm = realm;
    const { token, reason } = bearerToken(req);
    if (token === null) {
      logger.info({ event: 'tenantauth.rejected', reason }, 'bearer token rejected');
      return unauthorized(res, realm, reason !== 'missing');
    }
    verifier.verify(token, { audience }).then(
      (identity) => {
        if (identity === null) {
          const fields = {
            event: 'tenantauth.rejected',
            reason: 'invalid',
            tokenLength: token.length,
          };
          logger.info(fields, 'bearer token rejected');
          return unauthorized(res, realm, true);
        }
        req.auth = identity;
        next();
      },
      (err) => {
        if (!(err instanceof VerifierUnavailableError)) return next(err);
        logger.warn(
          { event: 'tenantauth.unavailable', reason: err.reason },
          'tenantauth unavailable; request refused',
        );
        unavailable(res);
      },
    );
  }

  middleware.verifier = verifier;
  middleware.close = () => verifier.close();
  return middleware;
}

/**
 * Return middleware that lets the request through only if `req.auth` holds every scope in
 * `required`; else 403 `insufficient_scope` naming them (RFC 6750 §3.1). Mount it after
 * tenantAuth(); without a verified identity it fails with an error (500), never lets through.
 */
function requireScope(...required) {
  if (required.length === 0 || !required.every((scope) => SCOPE_TOKEN.test(scope))) {
    throw new TypeError('requireScope needs one or more scope tokens (RFC 6749 §3.3)');
  }
  return function scopeCheck(req, res, next) {
    if (!req.auth) return next(new Error('requireScope() used without tenantAuth() before it'));
    if (required.every((scope) => req.auth.scopes.includes(scope))) return next();
    const realm = res.locals.tenantauthRealm ?? 'api';
    const scope = required.join(' ');
    res.set(
      'WWW-Authenticate',
      `Bearer realm="${realm}", error="insufficient_scope", scope="${scope}"`,
    );
    problem(
      res,
      403,
      'Forbidden',
      'insufficient_scope',
      `This request needs the scope "${scope}".`,
    );
  };
}

/**
 * Return `{token}` from the request's single `Authorization: Bearer <b64token>` header, or
 * `{token: null, reason}` with reason "missing", "several" or "malformed".
 */
function bearerToken(req) {
  // headersDistinct keeps every Authorization line; req.headers silently keeps only the first.
  const values = req.headersDistinct.authorization ?? [];
  if (values.length === 0) return { token: null, reason: 'missing' };
  if (values.length > 1) return { token: null, reason: 'several' };
  const match = BEARER.exec(values[0].trim());
  return match ? { token: match[1] } : { token: null, reason: 'malformed' };
}

function unauthorized(res, realm, invalid) {
  // RFC 6750 §3.1: no error code when the request carried no credentials at all.
  const error = invalid ? ', error="invalid_token"' : '';
  res.set('WWW-Authenticate', `Bearer realm="${realm}"${error}`);
  problem(res, 401, 'Unauthorized', 'invalid_token', 'A valid bearer token is required.');
}

function unavailable(res) {
  res.set('Retry-After', RETRY_AFTER_SECONDS);
  problem(
    res,
    503,
    'Service Unavailable',
    'verifier_unavailable',
    'The token could not be verified right now; retry later.',
  );
}

/** Send an RFC 9457 problem document. */
function problem(res, status, title, code, detail) {
  res.status(status).type(PROBLEM).set('Cache-Control', 'no-store');
  res.send(JSON.stringify({ type: 'about:blank', title, status, detail, code }));
}

module.exports = { tenantAuth, requireScope, TenantAuthVerifier, VerifierUnavailableError };
