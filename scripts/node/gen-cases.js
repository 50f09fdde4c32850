#!/usr/bin/env node
// The golden-vector case list: deterministic (seeded PRNG), covering every key size and PEM
// format, every allowed uid character, uid lengths 4 and 32, options absent and present,
// every env mode, and the error paths. Writes a JSON array of cases to stdout.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..', '..');
const UID_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-#@~=*(){}[]:.,<>+';

// mulberry32: tiny seeded PRNG, so the case list is the same on every run.
let seed = 0x5eed1e55;
function rand() {
  seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const randInt = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));

const keys = [];
for (const bits of [1024, 2048, 3072, 4096]) {
  for (const fmt of ['pkcs1', 'pkcs8']) keys.push(`fixtures/keys/rsa${bits}-${fmt}.json`);
}
keys.push('fixtures/tcb_custom_login.json');
const envOf = (k) => JSON.parse(fs.readFileSync(path.join(root, k), 'utf8')).env_id;

const cases = [];
let charCursor = 0;
function nextUid(len) {
  let s = '';
  for (let i = 0; i < len; i++) s += UID_CHARS[(charCursor++) % UID_CHARS.length];
  return s;
}

for (const key of keys) {
  const env = envOf(key);
  for (let i = 0; i < 24; i++) {
    // Lengths: the two bounds often, the rest in between.
    const len = i % 4 === 0 ? 4 : i % 4 === 1 ? 32 : randInt(5, 31);
    const uid = nextUid(len);
    const now = i === 0 ? 1758597487691 : randInt(1.5e12, 2.2e12);
    let options = null;
    switch (i % 6) {
      case 1: options = { refresh: randInt(1, 86400000) }; break;
      case 2: options = { expire: now + randInt(1, 30 * 86400000) }; break;
      case 3: options = { refresh: randInt(1, 86400000), expire: now + randInt(1, 30 * 86400000) }; break;
      case 4: options = { refresh: 0 }; break; // falsy but set: node keeps 0
      default: break;
    }
    const mode = i % 8 === 5 ? 'tcb_env' : i % 8 === 6 ? 'scf_namespace' : 'init';
    cases.push({ credentials: key, env: { mode, value: env }, uid, now_ms: now, options });
  }
}
// The reference example, verbatim uid.
cases.push({ credentials: 'fixtures/tcb_custom_login.json', env: { mode: 'init', value: envOf('fixtures/tcb_custom_login.json') }, uid: 'user_0001', now_ms: 1758597487691, options: null });

// Error paths node-sdk itself takes: bad uids, an env mismatch, a key without env_id.
const main = 'fixtures/tcb_custom_login.json';
const mainEnv = { mode: 'init', value: envOf(main) };
for (const uid of ['', 'abc', 'a'.repeat(33), 'user 01', 'user\n', 'usér', 'user/01', 'user"01', 'user\\01', 'user$01', 'user!01', 'user%01', '用户用户']) {
  cases.push({ credentials: main, env: mainEnv, uid, now_ms: 1758597487691, options: null });
}
cases.push({ credentials: main, env: { mode: 'init', value: 'some-other-env' }, uid: 'user_0001', now_ms: 1758597487691, options: null });
cases.push({ credentials: 'fixtures/keys/rsa1024-no-env-id.json', env: { mode: 'init', value: 'any-env' }, uid: 'user_0001', now_ms: 1758597487691, options: null });

// 8192-bit keys, the largest size accepted. Appended after every other case, with a seed of
// their own, so that the cases above and their golden tickets stay exactly as they were. A few
// cases per key, not 24: RustCrypto takes ~0.2 s for one 8192-bit signature.
seed = 0x81920000;
for (const key of ['fixtures/keys/rsa8192-pkcs1.json', 'fixtures/keys/rsa8192-pkcs8.json']) {
  const env = envOf(key);
  const plan = [
    { len: 4, options: null, mode: 'init' },
    { len: 32, options: 'refresh', mode: 'tcb_env' },
    { len: randInt(5, 31), options: 'both', mode: 'scf_namespace' },
  ];
  for (const { len, options: kind, mode } of plan) {
    const now = randInt(1.5e12, 2.2e12);
    const options = kind === 'refresh' ? { refresh: randInt(1, 86400000) }
      : kind === 'both' ? { refresh: 0, expire: now + randInt(1, 30 * 86400000) } : null;
    cases.push({ credentials: key, env: { mode, value: env }, uid: nextUid(len), now_ms: now, options });
  }
}

process.stdout.write(JSON.stringify(cases) + '\n');
