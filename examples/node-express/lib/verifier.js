'use strict';
/**
 * A small client for tenantauth's `GET /v1/verify` (built-in `http`/`https` only).
 *
 * One keep-alive agent per verifier, so verifying costs one request on a warm connection, not
 * a TCP (and TLS) handshake each time. Every call has one deadline covering connect, send and
 * reading the answer. The verifier never decides anything itself: 200 is the only "valid",
 * 401 the only "invalid", and every other outcome (refused, reset, timeout, 5xx, anything
 * unexpected) is "unavailable", so the caller fails closed.
 */

const http = require('node:http');
const https = require('node:https');

const DEFAULT_TIMEOUT_MS = 2000;
// tenantauth's gunicorn closes idle keep-alive connections after 5 s (gunicorn_conf.py,
// `keepalive = 5`). Dropping ours after 4 s means we rarely send on a socket the server is
// closing at that moment; the one retry below covers the rest.
const DEFAULT_IDLE_SOCKET_MS = 4000;
const DEFAULT_MAX_SOCKETS = 64;
// A verify answer is a few KiB at most (claims are bounded by the token size cap).
const MAX_RESPONSE_BYTES = 64 * 1024;
// RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
// tenantauth refuses tokens over 4096 characters; anything far larger is not worth sending.
const MAX_TOKEN_LENGTH = 8192;
// Errors of a reused keep-alive socket that the server closed as we wrote to it.
const STALE_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE']);

/** tenantauth could not give a safe answer: the caller must refuse the request (503). */
class VerifierUnavailableError extends Error {
  /** `reason` is a short, token-free description (an error code or a status). */
  constructor(reason, options) {
    super(`tenantauth unavailable: ${reason}`, options);
    this.name = 'VerifierUnavailableError';
    this.reason = reason;
  }
}

class TenantAuthVerifier {
  /**
   * `url`: tenantauth's base URL (a path prefix is kept: `https://gw/auth/` → `/auth/v1/verify`).
   * `timeoutMs`: the deadline of one verification, retry included. `agent`: bring your own
   * (then `close()` leaves it alone). Throws `TypeError` for a missing or non-HTTP(S) URL.
   */
  constructor({ url, timeoutMs = DEFAULT_TIMEOUT_MS, agent, maxSockets, idleSocketMs } = {}) {
    if (!url) throw new TypeError('tenantauth: the `url` option is required');
    const base = new URL(url);
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new TypeError('tenantauth: `url` must be http: or https:');
    }
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    this.endpoint = new URL('v1/verify', base);
    this.transport = base.protocol === 'https:' ? https : http;
    this.timeoutMs = timeoutMs;
    this.ownsAgent = agent === undefined;
    this.agent =
      agent ??
      new this.transport.Agent({
        keepAlive: true,
        maxSockets: maxSockets ?? DEFAULT_MAX_SOCKETS,
        timeout: idleSocketMs ?? DEFAULT_IDLE_SOCKET_MS, // idle sockets are destroyed after this
      });
  }

  /**
   * Verify `token` (optionally for `audience`).
   *
   * Returns the frozen identity `{tenant, subject, scope, scopes, claims}`, or `null` when
   * the token is not acceptable (tenantauth said 401, or it is not even b64token syntax).
   * Rejects with `VerifierUnavailableError` when no safe answer could be had in time.
   */
  async verify(token, { audience } = {}) {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH || !B64TOKEN.test(token)) {
      return null;
    }
    const url = new URL(this.endpoint);
    if (audience !== undefined && audience !== null) url.searchParams.set('audience', audience);
    const deadline = Date.now() + this.timeoutMs;
    let reply;
    try {
      reply = await this.#send(url, token, deadline);
    } catch (err) {
      // GET is idempotent (RFC 9110 §9.2.2): resending after a stale keep-alive socket is safe.
      if (!(err.reusedSocket && STALE_SOCKET_CODES.has(err.code)) || Date.now() >= deadline) {
        throw unavailable(err);
      }
      reply = await this.#send(url, token, deadline).catch((again) => {
        throw unavailable(again);
      });
    }
    return interpret(reply);
  }

  /** Close the idle keep-alive connections (of an agent this verifier created). */
  close() {
    if (this.ownsAgent) this.agent.destroy();
  }

  #send(url, token, deadline) {
    return new Promise((resolve, reject) => {
      const req = this.transport.request(url, {
        method: 'GET',
        agent: this.agent,
        headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
      });
      let settled = false;
      const settle = (fn, value) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        fn(value);
      };
      const fail = (err) => {
        err.reusedSocket = req.reusedSocket; // set by http once a pooled socket was assigned
        settle(reject, err);
        req.destroy();
      };
      const timer = setTimeout(
        () => fail(codedError('ETIMEDOUT', 'deadline passed')),
        Math.max(0, deadline - Date.now()),
      );
      req.on('error', fail);
      req.on('response', (res) =>
        readBody(res, (body) => settle(resolve, { status: res.statusCode, body }), fail),
      );
      req.end();
    });
  }
}

/** Collect a response body of at most MAX_RESPONSE_BYTES; call `done(buffer)` or `fail(err)`. */
function readBody(res, done, fail) {
  const chunks = [];
  let size = 0;
  res.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_RESPONSE_BYTES) fail(codedError('ETOOLARGE', 'response too large'));
    else chunks.push(chunk);
  });
  res.on('end', () => done(Buffer.concat(chunks)));
  res.on('error', fail);
  res.on('close', () => {
    if (!res.complete) fail(codedError('ECONNRESET', 'response cut short'));
  });
}

/**
 * Turn tenantauth's answer into an identity, `null` (401), or a VerifierUnavailableError for
 * anything else: a 200 whose body does not say `active: true` with string `tid` and `sub` is
 * not trusted either.
 */
function interpret({ status, body }) {
  if (status === 401) return null;
  if (status !== 200) throw new VerifierUnavailableError(`status ${status}`);
  let document;
  try {
    document = JSON.parse(body.toString('utf8'));
  } catch {
    throw new VerifierUnavailableError('200 without a JSON body');
  }
  const claims = document?.claims;
  const valid =
    document.active === true &&
    claims !== null &&
    typeof claims === 'object' &&
    typeof claims.tid === 'string' &&
    typeof claims.sub === 'string' &&
    (claims.scope === undefined || typeof claims.scope === 'string');
  if (!valid) throw new VerifierUnavailableError('200 with an unexpected body');
  const scope = claims.scope ?? null;
  return Object.freeze({
    tenant: claims.tid,
    subject: claims.sub,
    scope,
    // RFC 6749 §3.3: space-delimited, case-sensitive scope tokens.
    scopes: Object.freeze(scope === null ? [] : scope.split(' ').filter(Boolean)),
    claims: Object.freeze(claims),
  });
}

function unavailable(err) {
  if (err instanceof VerifierUnavailableError) return err;
  return new VerifierUnavailableError(err.code || err.message, { cause: err });
}

function codedError(code, message) {
  return Object.assign(new Error(message), { code });
}

module.exports = { TenantAuthVerifier, VerifierUnavailableError, B64TOKEN };
