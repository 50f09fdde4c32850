// What a test page found, shown as a table (for the screenshot) and handed to the playwright
// script as window.__report once window.__done is set. Never holds a ticket or a token: only
// statuses, booleans, ids and error codes.

export const report = {}

export function params() {
  const query = new URLSearchParams(location.search)
  const emulator = query.get('emulator')
  const env = query.get('env')
  if (!emulator || !env) throw new Error('the page needs ?emulator=URL&env=ENV')
  return { emulator: new URL(emulator), env }
}

export function show(title) {
  document.title = title
  const rows = Object.entries(report)
    .map(([k, v]) => `<tr><th>${escape(k)}</th><td>${escape(JSON.stringify(v))}</td></tr>`)
    .join('')
  document.body.innerHTML = `<h1>${escape(title)}</h1><table>${rows}</table>`
}

function escape(text) {
  return String(text).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c])
}

/** Log in at the app's own backend (examples/login_server.rs); returns the ticket. */
export async function appLogin() {
  const login = (username, password) => fetch('/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  })
  const refused = await login('alice', 'not her password')
  report.app_login_wrong_password = refused.status
  const response = await login('alice', 'wonderland')
  report.app_login = response.status
  const { ticket } = await response.json()
  return ticket
}

/** The message of an error the SDKs throw or return, cut short. */
export function describe(error) {
  if (!error) return null
  const text = error.message || error.error_description || error.error || JSON.stringify(error)
  return String(text).slice(0, 300)
}

export async function run(title, main) {
  try {
    await main()
  } catch (error) {
    report.failed = describe(error)
  }
  show(title)
  window.__report = report
  window.__done = true
}
