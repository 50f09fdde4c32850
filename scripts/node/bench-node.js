#!/usr/bin/env node
// node-sdk createTicket throughput: distinct uids, real clock, for SECONDS.
//   node bench-node.js CREDENTIALS_JSON SECONDS   -> {"tickets_per_sec": …, "tickets": …}
'use strict';
const fs = require('fs');
const path = require('path');
const modules = process.env.ORACLE_NODE_MODULES || path.join(__dirname, 'node_modules');
const cloudbase = require(path.join(modules, '@cloudbase/node-sdk'));

const [credentialsPath, secondsArg] = process.argv.slice(2);
const credentials = JSON.parse(fs.readFileSync(credentialsPath, 'utf8'));
const app = cloudbase.init({ env: credentials.env_id, credentials });
const auth = app.auth();
const seconds = Number(secondsArg || 3);

auth.createTicket('warmup_0000');
const start = process.hrtime.bigint();
const end = start + BigInt(Math.round(seconds * 1e9));
let n = 0;
let now = start;
while (now < end) {
  auth.createTicket('node_' + String(n).padStart(8, '0'));
  n++;
  now = process.hrtime.bigint();
}
const elapsed = Number(now - start) / 1e9;
process.stdout.write(JSON.stringify({ tickets_per_sec: n / elapsed, tickets: n, seconds: elapsed }) + '\n', () => process.exit(0));
