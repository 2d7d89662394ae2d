'use strict';
/**
 * Helpers of the node tests. They run against a real tenantauth whose address, admin token and
 * seeded tokens come from the environment; tests/e2e/test_node_express.py starts the server,
 * seeds it and sets these (see README.md, "Tests").
 */

const http = require('node:http');
const net = require('node:net');
const { once } = require('node:events');
const { createApp } = require('../server');

/** Return the environment variable `name`; throw (never skip) when it is not set. */
function env(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run these tests through tests/e2e/test_node_express.py`);
  }
  return value;
}

/**
 * Start the example app on a free loopback port with `options` for tenantAuth() (default:
 * the real tenantauth of TENANTAUTH_URL). Returns `{base, logs, close}`; `logs` collects every
 * `[level, fields, message]` the middleware logged.
 */
async function startApp(options = {}) {
  const logs = [];
  const logger = {
    info: (fields, message) => logs.push(['info', fields, message]),
    warn: (fields, message) => logs.push(['warn', fields, message]),
  };
  const app = createApp({ url: process.env.TENANTAUTH_URL, logger, ...options });
  const server = await listen(app);
  const close = async () => {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
    app.locals.close();
  };
  return { base: `http://127.0.0.1:${server.address().port}`, logs, close };
}

/** Listen on a free loopback port with `handler` (an app or a request listener). */
async function listen(handler) {
  const server = http.createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

/**
 * Send one request on a new connection. `headers` values may be arrays (one header line per
 * element). Returns `{status, headers, body}` with `body` parsed when it is JSON.
 */
function request(base, path, { method = 'GET', headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(path, base), { method, agent: false });
    for (const [name, value] of Object.entries(headers)) req.setHeader(name, value);
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const json = /json/.test(res.headers['content-type'] ?? '');
        resolve({
          status: res.statusCode,
          headers: res.headers,
          body: json ? JSON.parse(text) : text,
        });
      });
    });
    req.end();
  });
}

/** `Authorization: Bearer <token>` as a headers object. */
function bearer(token) {
  return { authorization: `Bearer ${token}` };
}

/** Call tenantauth's admin API with the admin token; return `{status, body}`. */
async function admin(method, path, body) {
  const response = await fetch(new URL(path, env('TENANTAUTH_URL')), {
    method,
    headers: {
      authorization: `Bearer ${env('TENANTAUTH_ADMIN_TOKEN')}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** Return a loopback port that nothing listens on (it was bound a moment ago, then closed). */
async function closedPort() {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

module.exports = { env, startApp, listen, request, bearer, admin, closedPort };
