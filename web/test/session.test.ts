// The session layer (src/api/session.ts) under the typed client: the access token stays in
// memory and goes on every API call; a 401 triggers one shared refresh through the cookie and
// one retry; a session that cannot be refreshed is reported as signed out; reasons reach callers.
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { api, ok, publicApi } from '../src/api/client'
import { ApiError } from '../src/api/errors'
import { isSignedIn, login, logout, onSignedOut, refreshSession, withSession } from '../src/api/session'
import { uploadAsset } from '../src/api/upload'

const LOGIN = '/v1/auth:login'
const REFRESH = '/v1/auth/session:refresh'
const LOGOUT = '/v1/auth/session:logout'
const realFetch = globalThis.fetch

interface Call {
  url: string
  method: string
  auth: string
  body: string
  credentials: RequestCredentials
}
const errorInfo = (reason: string, metadata = {}) => ({
  '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
  reason,
  domain: 'imgtag.dev',
  metadata,
})
const rpcError = (status: number, code: number, message: string, reason?: string, metadata?: object) =>
  Response.json({ code, message, details: reason ? [errorInfo(reason, metadata)] : [] }, { status })
const expired = () => Response.json({ code: 16, message: 'Jwt is expired' }, { status: 401 })
const tokens = (accessToken: string) => ({ tokens: { accessToken, tokenType: 'Bearer' } })
const tick = () => new Promise((resolve) => setTimeout(resolve, 5))

/** Replaces fetch; `handler(call)` answers; returns the recorded calls. */
function stubFetch(handler: (call: Call) => Response | Promise<Response>): Call[] {
  const calls: Call[] = []
  globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(String(input), init)
    const u = new URL(request.url)
    const call = {
      url: u.pathname + u.search,
      method: request.method,
      auth: request.headers.get('Authorization') ?? '',
      body: await request.clone().text(),
      credentials: request.credentials,
    }
    calls.push(call)
    return handler(call)
  }) as typeof fetch
  return calls
}

const listAssets = () => ok(api.GET('/v1/assets', { params: { query: { page_size: 50 } } }))
const me = () => ok(api.GET('/v1/users/me'))
const trash = (id: string) => ok(api.DELETE('/v1/assets/{asset}', { params: { path: { asset: id } } }))

async function signInWith(token: string): Promise<void> {
  stubFetch(() => Response.json({ ...tokens(token), user: { name: 'users/1', username: 'alice' } }))
  await login('alice', 'correct horse battery staple')
}

let signedOutEvents = 0
let stopListening = () => {}
beforeEach(async () => {
  stubFetch(() => Response.json({}))
  await logout() // every test starts without a session
  signedOutEvents = 0
  stopListening = onSignedOut(() => signedOutEvents++) as () => void
})
afterEach(() => {
  stopListening()
  globalThis.fetch = realFetch
})

describe('session', () => {
  test('login keeps the access token in memory only and sends it on every API call', async () => {
    localStorage.clear()
    sessionStorage.clear()
    const calls = stubFetch((c) => (c.url === LOGIN ? Response.json({ ...tokens('A'), user: { username: 'alice' } }) : Response.json({})))
    const user = await login('alice', 'pw-pw-pw-pw')
    expect(user.username).toBe('alice')
    expect(calls[0]).toMatchObject({ method: 'POST', auth: '', credentials: 'same-origin' })
    expect(JSON.parse(calls[0].body)).toEqual({ login: 'alice', password: 'pw-pw-pw-pw' })
    await listAssets()
    await me()
    await trash('1')
    expect(calls.slice(1).map((c) => c.auth)).toEqual(['Bearer A', 'Bearer A', 'Bearer A'])
    expect(Object.keys(localStorage).concat(Object.keys(sessionStorage))).toEqual([])
  })

  test('concurrent 401s share exactly one refresh, then every call is retried with the new token', async () => {
    await signInWith('A')
    let releaseRefresh = () => {}
    const refreshAnswered = new Promise<void>((resolve) => (releaseRefresh = resolve))
    const calls = stubFetch(async (c) => {
      if (c.url === REFRESH) {
        await refreshAnswered
        return Response.json(tokens('B'))
      }
      if (c.auth === 'Bearer A') return expired()
      return c.url === '/v1/users/me' ? Response.json({ username: 'alice' }) : Response.json({ assets: [{ name: 'assets/1' }] })
    })
    const results = Promise.all([listAssets(), me(), trash('1'), listAssets()])
    await tick()
    releaseRefresh()
    const [page, user] = await results
    expect(page.assets).toHaveLength(1)
    expect(user.username).toBe('alice')
    const refreshes = calls.filter((c) => c.url === REFRESH)
    expect(refreshes).toHaveLength(1)
    expect(refreshes[0]).toMatchObject({ method: 'POST', body: '{}', auth: '' })
    expect(calls.filter((c) => c.url !== REFRESH && c.auth === 'Bearer B')).toHaveLength(4)
    expect(signedOutEvents).toBe(0)
  })

  test('a call that starts while a refresh is running waits for it instead of sending the old token', async () => {
    await signInWith('A')
    let releaseRefresh = () => {}
    const refreshAnswered = new Promise<void>((resolve) => (releaseRefresh = resolve))
    const calls = stubFetch(async (c) => {
      if (c.url === REFRESH) {
        await refreshAnswered
        return Response.json(tokens('B'))
      }
      return c.auth === 'Bearer A' ? expired() : Response.json({})
    })
    const first = listAssets()
    await tick()
    const second = listAssets()
    releaseRefresh()
    await Promise.all([first, second])
    expect(calls.filter((c) => c.url === REFRESH)).toHaveLength(1)
    expect(calls.filter((c) => c.url !== REFRESH).map((c) => c.auth)).toEqual(['Bearer A', 'Bearer B', 'Bearer B'])
  })

  test('a call is retried only once: a refused new token ends the session and signals it', async () => {
    await signInWith('A')
    const calls = stubFetch((c) => (c.url === REFRESH ? Response.json(tokens('B')) : expired()))
    await expect(listAssets()).rejects.toMatchObject({ status: 401 })
    expect(calls.map((c) => [c.url.split('?')[0], c.auth])).toEqual([
      ['/v1/assets', 'Bearer A'],
      [REFRESH, ''],
      ['/v1/assets', 'Bearer B'],
    ])
    expect(signedOutEvents).toBe(1)
    expect(isSignedIn()).toBe(false)
  })

  test('a refused refresh signals "signed out" once, however many calls were waiting for it', async () => {
    await signInWith('A')
    const calls = stubFetch((c) => (c.url === REFRESH ? rpcError(401, 16, 'the session has ended', 'INVALID_REFRESH_TOKEN') : expired()))
    const outcomes = await Promise.allSettled([listAssets(), me(), listAssets()])
    expect(outcomes.every((o) => o.status === 'rejected' && (o.reason as ApiError).status === 401)).toBe(true)
    expect(calls.filter((c) => c.url === REFRESH)).toHaveLength(1)
    expect(calls.filter((c) => c.url !== REFRESH)).toHaveLength(3)
    expect(signedOutEvents).toBe(1)
  })

  test('a refresh that fails for network reasons keeps the session and reports the network error', async () => {
    await signInWith('A')
    stubFetch((c) => {
      if (c.url === REFRESH) throw new TypeError('Failed to fetch')
      return expired()
    })
    await expect(listAssets()).rejects.toMatchObject({ status: 0 })
    expect(signedOutEvents).toBe(0)
    expect(isSignedIn()).toBe(true)
  })

  test('other errors are neither refreshed nor retried, and keep their reason', async () => {
    await signInWith('A')
    const calls = stubFetch(() => rpcError(403, 7, 'not yours', 'PERMISSION_DENIED'))
    await expect(trash('9')).rejects.toMatchObject({ status: 403, reason: 'PERMISSION_DENIED', code: 7 })
    expect(calls).toHaveLength(1)
  })

  test('refreshSession resumes from the cookie, and finds no session without signalling', async () => {
    stubFetch(() => Response.json(tokens('C')))
    expect(await refreshSession()).toBe(true)
    const calls = stubFetch(() => Response.json({}))
    await me()
    expect(calls[0].auth).toBe('Bearer C')
    await logout()
    stubFetch(() => rpcError(401, 16, 'no refresh token was sent; sign in', 'REFRESH_TOKEN_REQUIRED'))
    expect(await refreshSession()).toBe(false)
    expect(signedOutEvents).toBe(0)
  })

  test('logout ends the session on the server and here, without a "signed out" signal', async () => {
    await signInWith('A')
    const calls = stubFetch(() => Response.json({}))
    await logout()
    expect(calls.map((c) => [c.url, c.method, c.body])).toEqual([[LOGOUT, 'POST', '{}']])
    await listAssets()
    expect(calls[1].auth).toBe('')
    expect(signedOutEvents).toBe(0)
  })

  test('a 401 arriving after the user signed out neither refreshes nor signals', async () => {
    await signInWith('A')
    let answer = () => {}
    const answered = new Promise<void>((resolve) => (answer = resolve))
    const calls = stubFetch(async (c) => {
      if (c.url.startsWith('/v1/assets')) {
        await answered
        return expired()
      }
      return Response.json({})
    })
    const pending = listAssets()
    await tick()
    await logout()
    answer()
    await expect(pending).rejects.toMatchObject({ status: 401 })
    expect(calls.filter((c) => c.url === REFRESH)).toHaveLength(0)
    expect(signedOutEvents).toBe(0)
  })

  test('login errors carry the ErrorInfo reason and never trigger a refresh', async () => {
    const cases: [number, number, string, object?][] = [
      [401, 16, 'INVALID_LOGIN'],
      [403, 7, 'USER_PENDING_APPROVAL'],
      [429, 8, 'TOO_MANY_ATTEMPTS', { retry_after_s: '60' }],
    ]
    for (const [status, code, reason, metadata] of cases) {
      const calls = stubFetch(() => rpcError(status, code, 'refused', reason, metadata))
      const err = await login('alice', 'whatever').catch((e) => e)
      expect(err).toBeInstanceOf(ApiError)
      expect(err).toMatchObject({ status, code, reason, metadata: metadata ?? {} })
      expect(calls.map((c) => c.url)).toEqual([LOGIN])
    }
    expect(isSignedIn()).toBe(false)
  })

  test('registration and its settings go without a session', async () => {
    await signInWith('A')
    const calls = stubFetch(() => Response.json({ name: 'users/2', username: 'bob', state: 'PENDING' }))
    await ok(publicApi.POST('/v1/users:register', { body: { username: 'bob', email: 'b@example.com', password: 'long enough pw' } }))
    await ok(publicApi.GET('/v1/registrationSettings'))
    expect(calls.map((c) => [c.url, c.auth])).toEqual([
      ['/v1/users:register', ''],
      ['/v1/registrationSettings', ''],
    ])
  })

  test('an error without ErrorInfo has an empty reason; a text body is kept as the message', async () => {
    stubFetch(() => new Response('upstream connect error', { status: 503 }))
    await expect(ok(publicApi.GET('/v1/registrationSettings'))).rejects.toMatchObject({ reason: '', status: 503 })
  })

  test('withSession retries an upload made through another transport after one refresh', async () => {
    await signInWith('A')
    stubFetch(() => Response.json(tokens('B')))
    const sent: string[] = []
    const res = await withSession(async (headers) => {
      sent.push(headers.Authorization ?? '')
      return sent.length === 1 ? expired() : Response.json({ name: 'assets/1' })
    })
    expect(res.status).toBe(200)
    expect(sent).toEqual(['Bearer A', 'Bearer B'])
  })

  test('uploads surface the duplicate reason with the existing asset', async () => {
    await signInWith('A')
    class FakeXhr {
      status = 409
      statusText = 'Conflict'
      responseText = JSON.stringify({ code: 6, message: 'dup', details: [errorInfo('DUPLICATE_ASSET', { asset: 'assets/7' })] })
      upload = { onprogress: null as unknown }
      withCredentials = false
      headers: Record<string, string> = {}
      onload: (() => void) | null = null
      open() {}
      setRequestHeader(k: string, v: string) {
        this.headers[k] = v
      }
      send() {
        setTimeout(() => this.onload?.(), 0)
      }
      abort() {}
    }
    const real = globalThis.XMLHttpRequest
    globalThis.XMLHttpRequest = FakeXhr as unknown as typeof XMLHttpRequest
    try {
      const err = await uploadAsset(new Blob([new Uint8Array([1])], { type: 'image/png' }), { filename: 'a.png' }).catch((e) => e)
      expect(err).toMatchObject({ status: 409, reason: 'DUPLICATE_ASSET', metadata: { asset: 'assets/7' } })
    } finally {
      globalThis.XMLHttpRequest = real
    }
  })
})
