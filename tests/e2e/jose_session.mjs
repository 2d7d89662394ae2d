// One long-lived jose verifier per issuer, as a Node service holds it, driven line by line by
// tests/e2e/test_offline_interop.py (so the test can rotate a key between two verifications).
//
//   node jose_session.mjs <file URL of examples/node-offline/verify.js>
//
// stdin: `<issuer> <token>` lines; stdout: one JSON line each, {"ok": true, "payload": {...}}
// or {"ok": false, "code": "...", "message": "..."}.

import { createInterface } from 'node:readline';

const { createVerifier } = await import(process.argv[2]);
const verifiers = new Map();

for await (const line of createInterface({ input: process.stdin })) {
  const [issuer, token] = line.split(' ');
  let result;
  try {
    if (!verifiers.has(issuer)) verifiers.set(issuer, await createVerifier(issuer));
    result = { ok: true, payload: await verifiers.get(issuer)(token) };
  } catch (err) {
    result = { ok: false, code: err.code ?? err.name, message: err.message };
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
