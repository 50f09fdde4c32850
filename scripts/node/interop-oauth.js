// Interop: the official @cloudbase/oauth client against the cloudbase-ticket emulator.
//
// Reads from the environment: API_ORIGIN (the emulator's URL), ENV_ID, TICKET, TICKET_AGAIN
// (two genuine tickets for the same uid) and FORGED_TICKET. Prints one JSON line of findings
// (subs, booleans, error names; never a token) and exits 0, or prints the error and exits 1.
//
// Run with NODE_PATH pointing at the node_modules printed by `scripts/npm-deps.sh node`.
'use strict'

const { CloudbaseOAuth } = require('@cloudbase/oauth')

/** The SimpleStorage interface of @cloudbase/oauth, in memory. */
class MemoryStorage {
  constructor() { this.items = new Map() }
  async getItem(key) { return this.items.has(key) ? this.items.get(key) : null }
  async removeItem(key) { this.items.delete(key) }
  async setItem(key, value) { this.items.set(key, value) }
  getItemSync(key) { return this.items.has(key) ? this.items.get(key) : null }
  removeItemSync(key) { this.items.delete(key) }
  setItemSync(key, value) { this.items.set(key, value) }
}

function need(name) {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set`)
  return value
}

function client(apiOrigin, env, ticket) {
  const oauth = new CloudbaseOAuth({ apiOrigin, clientId: env, env, storage: new MemoryStorage() })
  oauth.authApi.setCustomSignFunc(() => ticket)
  return oauth
}

async function failure(promise) {
  try {
    await promise
    return null
  } catch (e) {
    return { error: e && e.error, error_description: e && e.error_description }
  }
}

async function main() {
  const apiOrigin = need('API_ORIGIN')
  const env = need('ENV_ID')
  const out = {}

  // 1. Sign in with a ticket, read the user.
  const first = client(apiOrigin, env, need('TICKET'))
  const creds = await first.authApi.signInWithCustomTicket()
  out.token_type = creds.token_type
  out.expires_in = creds.expires_in
  out.sub = creds.sub
  const user = await first.authApi.getUserInfo()
  out.user_sub = user.sub
  out.user_uid = user.uid
  out.custom_user_id = (user.providers || []).filter((p) => p.id === 'custom').map((p) => p.provider_user_id)[0]

  // 2. Refresh: new tokens, same user; the stored credentials are replaced.
  const refreshed = await first.authApi.refreshTokenForce({})
  out.refreshed_sub = refreshed.sub
  out.access_token_changed = refreshed.access_token !== creds.access_token
  out.refresh_token_changed = refreshed.refresh_token !== creds.refresh_token
  const stored = await first.authApi.getCredentials()
  out.stored_is_refreshed = stored.access_token === refreshed.access_token
  const userAfter = await first.authApi.getUserInfo()
  out.user_sub_after_refresh = userAfter.sub

  // 3. The used refresh token is refused; the client turns invalid_grant into
  //    unauthenticated and drops its credentials.
  const replay = client(apiOrigin, env, 'unused')
  out.reused_refresh = await failure(replay.oauth2client.refreshToken({ ...creds }))

  // 4. Sign in again, from another client, as the same uid: the same user.
  const second = client(apiOrigin, env, need('TICKET_AGAIN'))
  const again = await second.authApi.signInWithCustomTicket()
  out.sub_again = again.sub

  // 5. signOut() (POST /auth/v1/revoke {token}) ends the session: the access token it
  //    revoked is refused by /user/me and by introspect, and its refresh token no longer works.
  const before = await second.authApi.getCredentials()
  out.sign_out = await second.authApi.signOut()
  const me = await fetch(`${apiOrigin}/auth/v1/user/me`, {
    headers: { Authorization: `Bearer ${before.access_token}` },
  })
  out.revoked_user_me_status = me.status
  out.revoked_user_me_error = (await me.json()).error
  const introspected = await fetch(
    `${apiOrigin}/auth/v1/token/introspect?token=${encodeURIComponent(before.access_token)}`)
  out.revoked_introspect = await introspected.json()
  out.revoked_refresh = await failure(client(apiOrigin, env, 'unused').oauth2client.refreshToken({ ...before }))

  // 6. A forged ticket is refused.
  const forged = client(apiOrigin, env, need('FORGED_TICKET'))
  out.forged = await failure(forged.authApi.signInWithCustomTicket())

  console.log(JSON.stringify(out))
}

main().catch((e) => {
  console.error('interop failed:', e && (e.error_description || e.error || e.message || e))
  process.exit(1)
})
