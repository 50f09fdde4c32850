// Bundle the test pages with esbuild: src/v3.js (js-sdk 3.x) and src/v1.js (js-sdk 1.8.4) into
// OUT_DIR/v3.js and OUT_DIR/v1.js, and copy pages/*.html beside them.
//
//   NODE_PATH=<node_modules printed by scripts/npm-deps.sh browser> node scripts/browser/build.js OUT_DIR
'use strict'

const fs = require('fs')
const path = require('path')
const esbuild = require('esbuild')

const out = process.argv[2]
if (!out) {
  console.error('usage: node build.js OUT_DIR')
  process.exit(2)
}
const nodePaths = (process.env.NODE_PATH || '').split(path.delimiter).filter(Boolean)
fs.mkdirSync(out, { recursive: true })
esbuild.buildSync({
  entryPoints: {
    v3: path.join(__dirname, 'src', 'v3.js'),
    v1: path.join(__dirname, 'src', 'v1.js'),
  },
  bundle: true,
  outdir: out,
  format: 'iife',
  platform: 'browser',
  target: 'chrome110',
  nodePaths,
  define: { 'process.env.NODE_ENV': '"production"', global: 'globalThis' },
  logLevel: 'error',
})
for (const page of fs.readdirSync(path.join(__dirname, 'pages'))) {
  fs.copyFileSync(path.join(__dirname, 'pages', page), path.join(out, page))
}
console.log(out)
