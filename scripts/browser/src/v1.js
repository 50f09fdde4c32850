// Flow (b): the legacy web SDK, @cloudbase/js-sdk 1.8.4 (v1 protocol, POST /web), against the
// emulator.
import cloudbase from 'cloudbase-js-sdk-v1'
import { report, params, appLogin, describe, run } from './report.js'

run('@cloudbase/js-sdk 1.8.4', async () => {
  const { emulator, env } = params()
  const ticket = await appLogin()

  // Point the SDK at the emulator: init (no region), then registerEndPoint with a full URL.
  const app = cloudbase.init({ env })
  app.registerEndPoint(`${emulator.origin}/web`)
  const auth = app.auth({ persistence: 'local' })

  // A bad ticket first: the error names CloudBase's code.
  try {
    await auth.customAuthProvider().signIn('not-a-ticket')
    report.bad_ticket_error = null
  } catch (error) {
    report.bad_ticket_error = describe(error)
  }

  const loginState = await auth.customAuthProvider().signIn(ticket)
  report.is_custom_auth = loginState.isCustomAuth
  report.login_type = loginState.loginType
  report.uid = loginState.user.uid
  report.custom_user_id = loginState.user.customUserId
  report.has_login_state = auth.hasLoginState() !== null
  const info = await auth.getUserInfo()
  report.user_info_uid = info.uid
  report.user_info_custom_user_id = info.customUserId
  const first = loginState.credential

  // Refresh: getAuthHeaderAsync refreshes the access token with the (unchanged) refresh token.
  await auth.getAuthHeaderAsync()
  const after = await auth.getLoginState()
  report.access_token_changed = after.credential.accessToken !== first.accessToken
  report.refresh_token_kept = after.credential.refreshToken === first.refreshToken
  report.access_token_expire_in_future = Number(after.credential.accessTokenExpire) > Date.now()
  const current = await auth.getCurrentUser()
  report.current_user_uid = current && current.uid

  await auth.signOut()
  report.has_login_state_after_sign_out = auth.hasLoginState() !== null
  // The ended session's refresh token is refused.
  const replay = await fetch(`${emulator.origin}/web?env=${encodeURIComponent(env)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json;charset=UTF-8' },
    body: JSON.stringify({
      action: 'auth.fetchAccessTokenWithRefreshToken',
      dataVersion: '2020-01-10',
      env,
      refresh_token: first.refreshToken,
    }),
  })
  report.ended_session_refresh = (await replay.json()).code
  report.done = true
})
