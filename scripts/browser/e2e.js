// Drive the test pages in Debian's chromium with playwright-core and print one JSON line: for
// each flow, what the page reported, every request the page sent to the emulator (method,
// path, query keys, the names of the headers the page set, body keys and the v1 action; never a
// token or ticket) and the page's console errors.
// Screenshots go to SHOTS_DIR/<flow>.png.
//
// Environment: NODE_PATH (printed by scripts/npm-deps.sh browser), LOGIN_URL (examples/login_server.rs
// serving the bundles of build.js), EMULATOR_URL, ENV_ID, SHOTS_DIR, and optionally
// CHROMIUM (default /usr/bin/chromium) and FLOW_TIMEOUT_MS (default 60000).
'use strict'

const fs = require('fs')
const os = require('os')
const path = require('path')
const { chromium } = require('playwright-core')

function need(name) {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set`)
  return value
}

const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
]

/** Headers the browser sets on every request (accept-language is kept: js-sdk 3.x sets it too). */
const BROWSER_HEADERS = new Set([
  'accept', 'accept-encoding', 'connection', 'content-length', 'host',
  'origin', 'referer', 'user-agent',
])

/** The request body, if it is a JSON object. */
function jsonBody(request) {
  try {
    const body = request.postDataJSON()
    return body && typeof body === 'object' && !Array.isArray(body) ? body : null
  } catch (e) {
    return null
  }
}

async function flow(context, name, loginUrl, emulator, env, shots, timeout) {
  const page = await context.newPage()
  const requests = []
  const consoleErrors = []
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text().slice(0, 300)) })
  page.on('pageerror', (e) => consoleErrors.push(String(e).slice(0, 300)))
  page.on('request', (request) => {
    const url = new URL(request.url())
    if (url.origin !== emulator.origin) return
    const body = jsonBody(request)
    requests.push((async () => ({
      method: request.method(),
      path: url.pathname,
      query: [...url.searchParams.keys()].sort(),
      // Names only, and only those the page set (the SDK, or the test page's own fetch).
      headers: Object.keys(await request.allHeaders())
        .map((h) => h.toLowerCase())
        .filter((h) => !BROWSER_HEADERS.has(h) && !h.startsWith('sec-'))
        .sort(),
      body: body ? Object.keys(body).sort() : null,
      action: body && typeof body.action === 'string' ? body.action : null,
      status: await request.response().then((r) => (r ? r.status() : null), () => null),
    }))())
  })
  const url = `${loginUrl}/${name}.html?emulator=${encodeURIComponent(emulator.origin)}&env=${encodeURIComponent(env)}`
  await page.goto(url)
  await page.waitForFunction(() => window.__done === true, null, { timeout })
  const report = await page.evaluate(() => window.__report)
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true })
  await page.close()
  return { report, requests: await Promise.all(requests), console_errors: consoleErrors }
}

async function main() {
  const loginUrl = need('LOGIN_URL')
  const emulator = new URL(need('EMULATOR_URL'))
  const env = need('ENV_ID')
  const shots = need('SHOTS_DIR')
  const timeout = Number(process.env.FLOW_TIMEOUT_MS || 60000)
  fs.mkdirSync(shots, { recursive: true })
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'cbt-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: FLAGS,
    timeout,
  })
  const out = {}
  try {
    for (const name of ['v3', 'v1']) {
      out[name] = await flow(context, name, loginUrl, emulator, env, shots, timeout)
    }
  } finally {
    await context.close()
    fs.rmSync(profile, { recursive: true, force: true })
  }
  console.log(JSON.stringify(out))
}

main().catch((e) => {
  console.error('browser flows failed:', e && (e.stack || e.message || e))
  process.exit(1)
})
