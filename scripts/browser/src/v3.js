// Flow (a): the current official web SDK, @cloudbase/js-sdk 3.x, against the emulator.
import cloudbase from '@cloudbase/js-sdk'
import { report, params, appLogin, describe, run } from './report.js'

run('@cloudbase/js-sdk 3.x', async () => {
  const { emulator, env } = params()
  const ticket = await appLogin()

  // Point the SDK at the emulator: init, then registerHost (js-sdk >= 3.x; it sets both the
  // gateway (/v1, where /auth/v1/... lives) and the v1 endpoint (/web)).
  const app = cloudbase.init({ env, clientId: env })
  app.registerHost(emulator.host, emulator.protocol.replace(':', ''))
  const auth = app.auth()

  const signIn = await auth.signInWithCustomTicket(() => Promise.resolve(ticket))
  report.sign_in_error = describe(signIn.error)
  report.session_user_id = signIn.data && signIn.data.user ? signIn.data.user.id : null

  const user = await auth.getUserInfo()
  report.user_sub = user.sub
  report.user_uid = user.uid
  report.custom_user_id = (user.providers || []).filter((p) => p.id === 'custom').map((p) => p.provider_user_id)[0]

  const before = await auth.getCredentials()
  const refreshed = await auth.refreshTokenForce({})
  report.refreshed_sub = refreshed.sub
  report.access_token_changed = refreshed.access_token !== before.access_token
  report.refresh_token_changed = refreshed.refresh_token !== before.refresh_token
  const userAfter = await auth.getUserInfo()
  report.user_sub_after_refresh = userAfter.sub

  const signOut = await auth.signOut()
  report.sign_out_error = describe(signOut.error)
  report.login_state_after_sign_out = (await auth.getLoginState()) !== null
  // The access token signOut revoked (POST /auth/v1/revoke) must now be refused.
  const me = await fetch(new URL('/auth/v1/user/me', emulator), {
    headers: { authorization: `Bearer ${refreshed.access_token}` },
  })
  report.revoked_token_user_me = me.status
  report.done = true
})
