// The session layer of src/api.js: the access token stays in memory and goes on every API
// call; a 401 triggers one shared refresh through the cookie and one retry; a session that
// cannot be refreshed is reported as signed out; error reasons reach the caller.
import { test, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import {
  ApiError,
  deleteAsset,
  getCurrentUser,
  getRegistrationSettings,
  isSignedIn,
  listAssets,
  login,
  logout,
  onSignedOut,
  register,
  restoreSession,
  uploadAsset,
} from '../src/api.js'

const realFetch = globalThis.fetch
const LOGIN = '/v1/auth:login'
const REFRESH = '/v1/auth/session:refresh'
const LOGOUT = '/v1/auth/session:logout'

const errorInfo = (reason, metadata = {}) => ({
  '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
  reason,
  domain: 'imgtag.dev',
  metadata,
})
const rpcError = (status, code, message, reason, metadata) =>
  Response.json({ code, message, details: reason ? [errorInfo(reason, metadata)] : [] }, { status })
const expired = () => Response.json({ code: 16, message: 'Jwt is expired' }, { status: 401 })
const tokens = (accessToken) => ({ tokens: { accessToken, tokenType: 'Bearer', refreshToken: 'r-' + accessToken } })
const bearer = (call) => (call.init.headers || {}).Authorization || ''
const tick = () => new Promise((resolve) => setTimeout(resolve, 5))

/** Replaces fetch; `handler(url, init)` answers; returns the recorded calls. */
function stubFetch(handler) {
  const calls = []
  globalThis.fetch = async (url, init = {}) => {
    calls.push({ url, init })
    return handler(url, init)
  }
  return calls
}

/** Signs in with access token `token` (through a stubbed login). */
async function signInWith(token) {
  stubFetch(() => Response.json({ ...tokens(token), user: { name: 'users/1', username: 'alice' } }))
  await login('alice', 'correct horse battery staple')
}

let signedOutEvents = 0
let stopListening = () => {}
beforeEach(async () => {
  stubFetch(() => Response.json({}))
  await logout() // every test starts without a session
  signedOutEvents = 0
  stopListening = onSignedOut(() => signedOutEvents++)
})
afterEach(() => {
  stopListening()
  globalThis.fetch = realFetch
})

test('login keeps the access token in memory only and sends it on every API call', async () => {
  const stored = []
  const storage = { setItem: (k, v) => stored.push([k, v]), getItem: () => null, removeItem() {} }
  globalThis.localStorage = storage
  globalThis.sessionStorage = storage
  try {
    const calls = stubFetch((url) =>
      url === LOGIN ? Response.json({ ...tokens('A'), user: { username: 'alice' } }) : Response.json({}),
    )
    const user = await login('alice', 'pw-pw-pw-pw')
    assert.equal(user.username, 'alice')
    assert.equal(calls[0].init.method, 'POST')
    assert.deepEqual(JSON.parse(calls[0].init.body), { login: 'alice', password: 'pw-pw-pw-pw' })
    assert.equal(calls[0].init.headers['Content-Type'], 'application/json')
    assert.equal(bearer(calls[0]), '', 'no token is sent to the login route')
    assert.equal(calls[0].init.credentials, 'same-origin', 'the refresh cookie is accepted')

    await listAssets()
    await getCurrentUser()
    await deleteAsset('assets/1')
    await uploadAsset(new File([new Uint8Array([1])], 'a.png', { type: 'image/png' }))
    assert.deepEqual(calls.slice(1).map(bearer), ['Bearer A', 'Bearer A', 'Bearer A', 'Bearer A'])
    assert.equal(calls[4].init.headers['Content-Type'], 'image/png', 'request headers are kept')
    assert.deepEqual(stored, [], 'nothing is written to web storage')
  } finally {
    delete globalThis.localStorage
    delete globalThis.sessionStorage
  }
})

test('concurrent 401s share exactly one refresh, then every call is retried with the new token', async () => {
  await signInWith('A')
  let releaseRefresh
  const refreshAnswered = new Promise((resolve) => (releaseRefresh = resolve))
  const calls = stubFetch(async (url, init) => {
    if (url === REFRESH) {
      await refreshAnswered
      return Response.json(tokens('B'))
    }
    if (bearer({ init }) === 'Bearer A') return expired()
    return url === '/v1/users/me' ? Response.json({ username: 'alice' }) : Response.json({ assets: [{ name: 'assets/1' }] })
  })

  const results = Promise.all([listAssets(), getCurrentUser(), deleteAsset('assets/1'), listAssets()])
  await tick()
  releaseRefresh()
  const [page, me] = await results

  assert.equal(page.assets.length, 1)
  assert.equal(me.username, 'alice')
  const refreshes = calls.filter((c) => c.url === REFRESH)
  assert.equal(refreshes.length, 1, 'one refresh for four 401s')
  assert.equal(refreshes[0].init.method, 'POST')
  assert.equal(refreshes[0].init.body, '{}', 'the refresh token travels only as the HttpOnly cookie')
  assert.equal(bearer(refreshes[0]), '')
  const retries = calls.filter((c) => c.url !== REFRESH && bearer(c) === 'Bearer B')
  assert.equal(retries.length, 4, 'each call retried once with the new token')
  assert.equal(signedOutEvents, 0)

  // Calls made after the refresh use the new token at once.
  const after = calls.length
  await listAssets()
  assert.deepEqual(calls.slice(after).map(bearer), ['Bearer B'])
})

test('a call that starts while a refresh is running waits for it instead of sending the old token', async () => {
  await signInWith('A')
  let releaseRefresh
  const refreshAnswered = new Promise((resolve) => (releaseRefresh = resolve))
  const calls = stubFetch(async (url, init) => {
    if (url === REFRESH) {
      await refreshAnswered
      return Response.json(tokens('B'))
    }
    return bearer({ init }) === 'Bearer A' ? expired() : Response.json({})
  })
  const first = listAssets()
  await tick() // the first call's 401 started the refresh
  const second = listAssets()
  releaseRefresh()
  await Promise.all([first, second])
  assert.equal(calls.filter((c) => c.url === REFRESH).length, 1)
  assert.deepEqual(
    calls.filter((c) => c.url !== REFRESH).map(bearer),
    ['Bearer A', 'Bearer B', 'Bearer B'],
  )
})

test('a call is retried only once: a refused new token ends the session and signals it', async () => {
  await signInWith('A')
  const calls = stubFetch((url) => (url === REFRESH ? Response.json(tokens('B')) : expired()))
  await assert.rejects(listAssets(), (err) => err instanceof ApiError && err.status === 401)
  assert.deepEqual(
    calls.map((c) => [c.url.split('?')[0], bearer(c)]),
    [
      ['/v1/assets', 'Bearer A'],
      [REFRESH, ''],
      ['/v1/assets', 'Bearer B'],
    ],
  )
  assert.equal(signedOutEvents, 1)
  assert.equal(isSignedIn(), false)
})

test('a refused refresh signals "signed out" once, however many calls were waiting for it', async () => {
  await signInWith('A')
  const calls = stubFetch((url) =>
    url === REFRESH ? rpcError(401, 16, 'the session has ended; sign in again', 'INVALID_REFRESH_TOKEN') : expired(),
  )
  const outcomes = await Promise.allSettled([listAssets(), getCurrentUser(), listAssets()])
  assert.ok(outcomes.every((o) => o.status === 'rejected' && o.reason.status === 401))
  assert.equal(calls.filter((c) => c.url === REFRESH).length, 1)
  assert.equal(signedOutEvents, 1)
  assert.equal(isSignedIn(), false)
  assert.equal(calls.filter((c) => c.url !== REFRESH).length, 3, 'no call is retried without a new token')
})

test('a refresh that fails for network reasons keeps the session and reports the network error', async () => {
  await signInWith('A')
  const calls = stubFetch((url) => {
    if (url === REFRESH) throw new TypeError('Failed to fetch')
    return expired()
  })
  await assert.rejects(listAssets(), (err) => err instanceof ApiError && err.status === 0)
  assert.equal(signedOutEvents, 0)
  assert.equal(isSignedIn(), true)
  stubFetch(() => Response.json({}))
  await listAssets() // still signed in: the next call goes out with the token
  assert.equal(calls.filter((c) => c.url === REFRESH).length, 1)
})

test('other errors are neither refreshed nor retried', async () => {
  await signInWith('A')
  const calls = stubFetch(() => rpcError(403, 7, 'not yours', 'PERMISSION_DENIED'))
  await assert.rejects(deleteAsset('assets/9'), (err) => err.status === 403 && err.reason === 'PERMISSION_DENIED')
  assert.equal(calls.length, 1)
  assert.equal(signedOutEvents, 0)
})

test('restoreSession resumes from the refresh cookie, or finds no session without signalling', async () => {
  let calls = stubFetch((url) =>
    url === REFRESH ? Response.json(tokens('C')) : Response.json({ name: 'users/1', username: 'alice' }),
  )
  const user = await restoreSession()
  assert.equal(user.username, 'alice')
  assert.deepEqual(
    calls.map((c) => [c.url, bearer(c)]),
    [
      [REFRESH, ''],
      ['/v1/users/me', 'Bearer C'],
    ],
  )

  await logout()
  calls = stubFetch(() => rpcError(401, 16, 'no refresh token was sent; sign in', 'REFRESH_TOKEN_REQUIRED'))
  assert.equal(await restoreSession(), null)
  assert.deepEqual(
    calls.map((c) => c.url),
    [REFRESH],
  )
  assert.equal(signedOutEvents, 0, 'not being signed in at start is not an event')
})

test('logout ends the session on the server and here, without a "signed out" signal', async () => {
  await signInWith('A')
  const calls = stubFetch(() => Response.json({}))
  await logout()
  assert.deepEqual(
    calls.map((c) => [c.url, c.init.method, c.init.body]),
    [[LOGOUT, 'POST', '{}']],
  )
  assert.equal(isSignedIn(), false)
  await listAssets()
  assert.equal(bearer(calls[1]), '', 'no token after sign-out')
  assert.equal(signedOutEvents, 0)
})

test('a 401 arriving after the user signed out neither refreshes nor signals', async () => {
  await signInWith('A')
  let answer
  const answered = new Promise((resolve) => (answer = resolve))
  const calls = stubFetch(async (url) => {
    if (url === '/v1/assets?page_size=50') {
      await answered
      return expired()
    }
    return Response.json({})
  })
  const pending = listAssets()
  await tick()
  await logout()
  answer()
  await assert.rejects(pending, (err) => err.status === 401)
  assert.equal(calls.filter((c) => c.url === REFRESH).length, 0)
  assert.equal(signedOutEvents, 0)
})

test('login errors carry the ErrorInfo reason and never trigger a refresh', async () => {
  const cases = [
    [401, 16, 'wrong username or password', 'INVALID_LOGIN'],
    [403, 7, "this account is waiting for an administrator's approval", 'USER_PENDING_APPROVAL'],
    [403, 7, "this account's registration was declined", 'USER_REJECTED'],
    [403, 7, 'this account has been disabled by an administrator', 'USER_DISABLED'],
    [429, 8, 'too many failed attempts; try again in 60 s', 'TOO_MANY_ATTEMPTS', { retry_after_s: '60' }],
  ]
  for (const [status, code, message, reason, metadata] of cases) {
    const calls = stubFetch(() => rpcError(status, code, message, reason, metadata))
    await assert.rejects(login('alice', 'whatever-it-is'), (err) => {
      assert.ok(err instanceof ApiError)
      assert.equal(err.status, status)
      assert.equal(err.code, code)
      assert.equal(err.reason, reason)
      assert.equal(err.message, message)
      assert.deepEqual(err.metadata, metadata || {})
      return true
    })
    assert.deepEqual(
      calls.map((c) => c.url),
      [LOGIN],
    )
    assert.equal(isSignedIn(), false)
  }
  assert.equal(signedOutEvents, 0)
})

test('register sends the account and surfaces rule violations by reason', async () => {
  let calls = stubFetch(() => Response.json({ name: 'users/2', username: 'bob', state: 'PENDING' }))
  const user = await register({ username: 'bob', email: 'bob@example.com', password: 'long enough pw' })
  assert.equal(user.state, 'PENDING')
  assert.equal(calls[0].url, '/v1/users:register')
  assert.deepEqual(JSON.parse(calls[0].init.body), { username: 'bob', email: 'bob@example.com', password: 'long enough pw' })
  assert.equal(bearer(calls[0]), '')

  await register({ username: 'bob', email: 'b@example.com', password: 'long enough pw', displayName: 'Bob' })
  assert.equal(JSON.parse(calls[1].init.body).displayName, 'Bob')

  for (const [status, code, reason] of [
    [400, 3, 'PASSWORD_TOO_SHORT'],
    [400, 3, 'INVALID_USERNAME'],
    [409, 6, 'USERNAME_TAKEN'],
    [409, 6, 'EMAIL_TAKEN'],
    [400, 9, 'REGISTRATION_CLOSED'],
  ]) {
    calls = stubFetch(() => rpcError(status, code, 'refused', reason))
    await assert.rejects(register({ username: 'bob', email: 'bob@example.com', password: 'x' }), (err) => {
      return err instanceof ApiError && err.status === status && err.reason === reason
    })
    assert.equal(calls.length, 1)
  }
})

test('registration settings are read without a session', async () => {
  const calls = stubFetch(() => Response.json({ name: 'registrationSettings', mode: 'APPROVAL_REQUIRED', minPasswordLength: 10 }))
  assert.deepEqual(await getRegistrationSettings(), { mode: 'APPROVAL_REQUIRED', minPasswordLength: 10, maxPasswordLength: 0 })
  assert.equal(calls[0].url, '/v1/registrationSettings')
  assert.equal(bearer(calls[0]), '')
})

test('an error without ErrorInfo has an empty reason', async () => {
  stubFetch(() => new Response('upstream connect error', { status: 503 }))
  await assert.rejects(getRegistrationSettings(), (err) => err.reason === '' && err.status === 503)
})
