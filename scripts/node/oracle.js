#!/usr/bin/env node
// The reference oracle: runs @cloudbase/node-sdk's real createTicket on a list of cases.
//
// stdin:  JSON array of cases
//           { credentials: <path to tcb_custom_login.json>, env: {mode, value}, uid, now_ms,
//             options: {refresh?, expire?} | null }
//         env.mode: "init" (init({env: value})), "tcb_env" (SYMBOL_CURRENT_ENV with TCB_ENV
//         exposed through TCB_CONTEXT_KEYS, as in a cloud function), "scf_namespace"
//         (SYMBOL_CURRENT_ENV with only SCF_NAMESPACE set).
// stdout: the same array, each case with "ticket" (string) or "error" (node's message) added.
//
// The clock is pinned by replacing the global Date for the duration of each call.
'use strict';
const fs = require('fs');
const path = require('path');

const modules = process.env.ORACLE_NODE_MODULES || path.join(__dirname, 'node_modules');
const cloudbase = require(path.join(modules, '@cloudbase/node-sdk'));
const sdkVersion = require(path.join(modules, '@cloudbase/node-sdk/package.json')).version;
const jwtVersion = require(path.join(modules, 'jsonwebtoken/package.json')).version;

const RealDate = Date;
let pinnedNow = null;
class PinnedDate extends RealDate {
  constructor(...args) {
    if (args.length === 0 && pinnedNow !== null) super(pinnedNow);
    else super(...args);
  }
  static now() {
    return pinnedNow !== null ? pinnedNow : RealDate.now();
  }
}
global.Date = PinnedDate;

const ENV_VARS = ['TCB_ENV', 'SCF_NAMESPACE', 'TCB_CONTEXT_KEYS'];
const apps = new Map();
function appFor(credentialsPath, env) {
  const key = credentialsPath + '\u0000' + env.mode + '\u0000' + (env.value || '');
  if (!apps.has(key)) {
    const credentials = JSON.parse(fs.readFileSync(credentialsPath, 'utf8'));
    const initEnv = env.mode === 'init' ? env.value : cloudbase.SYMBOL_CURRENT_ENV;
    apps.set(key, cloudbase.init({ env: initEnv, credentials }));
  }
  return apps.get(key);
}

function run(c) {
  for (const v of ENV_VARS) delete process.env[v];
  if (c.env.mode === 'tcb_env') {
    process.env.TCB_CONTEXT_KEYS = 'TCB_ENV';
    process.env.TCB_ENV = c.env.value;
  } else if (c.env.mode === 'scf_namespace') {
    process.env.SCF_NAMESPACE = c.env.value;
  }
  const app = appFor(c.credentials, c.env);
  const options = {};
  if (c.options && c.options.refresh !== undefined) options.refresh = c.options.refresh;
  if (c.options && c.options.expire !== undefined) options.expire = c.options.expire;
  pinnedNow = c.now_ms;
  try {
    return { ...c, ticket: app.auth().createTicket(c.uid, options) };
  } catch (e) {
    return { ...c, error: String(e && e.message ? e.message : e) };
  } finally {
    pinnedNow = null;
  }
}

const cases = JSON.parse(fs.readFileSync(0, 'utf8'));
const results = cases.map(run);
process.stdout.write(JSON.stringify({ node: process.version, node_sdk: sdkVersion, jsonwebtoken: jwtVersion, results }) + '\n', () => process.exit(0));
