// Load the emulator's users page in headless Chromium (Debian's /usr/bin/chromium through
// playwright-core) and print what it shows, as one JSON line: the users table's rows, the
// request log's rows, and any page error. Optionally saves a screenshot.
//
// Environment: PAGE_URL (http://127.0.0.1:PORT/emulator/), SCREENSHOT (a .png path, optional),
// CHROMIUM (default /usr/bin/chromium). Run with NODE_PATH at the node_modules that
// `scripts/npm-deps.sh browser` prints. Exits 1 on any failure.
'use strict'

const fs = require('fs')
const os = require('os')
const path = require('path')
const { chromium } = require('playwright-core')

async function main() {
  const url = process.env.PAGE_URL
  if (!url) throw new Error('PAGE_URL is not set')
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'cbt-chromium-'))
  // A fresh profile folder (playwright passes it as --user-data-dir).
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    viewport: { width: 1200, height: 720 },
    timeout: 30000,
  })
  try {
    const page = await browser.newPage()
    const errors = []
    page.on('pageerror', (e) => errors.push(String(e)))
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()) })
    const response = await page.goto(url, { waitUntil: 'load', timeout: 15000 })
    await page.waitForSelector('body[data-loaded="true"]', { timeout: 15000 })
    const rows = (selector) => page.$$eval(selector, (trs) =>
      trs.map((tr) => Array.from(tr.querySelectorAll('td')).map((td) => td.textContent)))
    const out = {
      status: response.status(),
      title: await page.title(),
      users: await rows('#users tbody tr'),
      requests: await rows('#requests tbody tr'),
      problem: await page.textContent('#problem'),
      errors,
    }
    if (process.env.SCREENSHOT) {
      await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true })
    }
    console.log(JSON.stringify(out))
  } finally {
    await browser.close()
    fs.rmSync(profile, { recursive: true, force: true })
  }
}

main().catch((e) => {
  console.error('page check failed:', e && (e.stack || e))
  process.exit(1)
})
