// The session. The access token lives in this module's memory only (never in storage a script
// could read later); the refresh token is an HttpOnly cookie scoped to /v1/auth/ that only the
// browser sends. A request answered 401 triggers one refresh shared by every caller (refresh
// tokens rotate, and presenting a used one ends the session), then is retried once; when the
// session cannot be refreshed, onSignedOut listeners are told.
import { ApiError, errorFromResponse } from './errors'
import { API_ORIGIN, CREDENTIALS } from './origin'

export const API_ROOT = `${API_ORIGIN}/v1`
const LOGIN_URL = `${API_ROOT}/auth:login`
const REFRESH_URL = `${API_ROOT}/auth/session:refresh`
const LOGOUT_URL = `${API_ROOT}/auth/session:logout`

let accessToken = ''
// Bumped whenever a session starts or ends, so that answers to requests sent before (a late
// refresh, a late 401) cannot revive or end the session that replaced theirs.
let epoch = 0
let refreshing: Promise<boolean> | null = null
const signedOutListeners = new Set<() => void>()

/** Calls `listener()` whenever the session ends without the user asking (it could not be
 * refreshed). Returns a function that removes the listener. */
export function onSignedOut(listener: () => void): () => void {
  signedOutListeners.add(listener)
  return () => signedOutListeners.delete(listener)
}

function startSession(token: string): void {
  accessToken = token
  epoch++
}

function endSession(): void {
  accessToken = ''
  epoch++
}

/** Whether an access token is held (the server still decides whether it is valid). */
export function isSignedIn(): boolean {
  return accessToken !== ''
}

/** One HTTP exchange without session handling; network failures become ApiError status 0. */
export async function send(input: Request): Promise<Response> {
  try {
    return await fetch(input)
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError') throw err
    if (err && (err as Error).name === 'AbortError') throw err
    throw new ApiError({ status: 0, message: (err as Error)?.message || 'Network error' })
  }
}

async function postJson(url: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await send(
    new Request(url, {
      method: 'POST',
      credentials: CREDENTIALS,
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
    }),
  )
  if (!res.ok) throw await errorFromResponse(res)
  const text = await res.text()
  return text ? JSON.parse(text) : {}
}

// Other tabs share the refresh cookie: where the browser offers Web Locks (secure contexts),
// their refreshes take turns, so no two ever present the same refresh token.
function inRefreshLock<T>(task: () => Promise<T>): Promise<T> {
  const locks = globalThis.navigator?.locks
  return locks && typeof locks.request === 'function'
    ? (locks.request('imgtag.session.refresh', task) as Promise<T>)
    : task()
}

function tokenOf(data: Record<string, unknown>): string {
  const tokens = data.tokens as { accessToken?: string } | undefined
  return tokens?.accessToken || ''
}

/** Exchanges the refresh cookie for a new access token, single-flight: concurrent callers share
 * one request. Resolves true when a token was obtained, false when the server refused (no
 * session); rejects on network or server failures (the session may still be fine). */
export function refreshSession(): Promise<boolean> {
  if (!refreshing) {
    const started = epoch
    refreshing = inRefreshLock(() => postJson(REFRESH_URL, {}))
      .then(
        (data) => {
          const token = tokenOf(data)
          if (started !== epoch) return accessToken !== '' // a sign-in or sign-out won meanwhile
          if (!token) return false
          startSession(token)
          return true
        },
        (err) => {
          if (err instanceof ApiError && err.status === 401) return false
          throw err
        },
      )
      .finally(() => {
        refreshing = null
      })
  }
  return refreshing
}

const settle = (promise: Promise<unknown> | null) => (promise ? promise.catch(() => {}) : Promise.resolve())

/**
 * Sends a request with the access token; on 401 refreshes once (shared) and retries once.
 * `attempt(headers)` makes one request with these extra headers and resolves its Response
 * (fetch for the typed client, XMLHttpRequest for uploads with progress).
 */
export async function withSession(attempt: (headers: Record<string, string>) => Promise<Response>): Promise<Response> {
  if (refreshing) await settle(refreshing) // don't send a token that is being replaced
  let retried = false
  for (;;) {
    const sentEpoch = epoch
    const sentToken = accessToken
    const res = await attempt(sentToken ? { Authorization: `Bearer ${sentToken}` } : {})
    // Not an expired token, or the session was ended on purpose while this was in flight.
    if (res.status !== 401 || (sentEpoch !== epoch && !accessToken)) return res
    if (retried) {
      // A freshly refreshed token was refused too: the session is unusable.
      if (accessToken === sentToken) expire()
      return res
    }
    retried = true
    // Someone else may already have refreshed since this request went out.
    if (accessToken === sentToken && !(await refreshSession())) {
      expire()
      return res
    }
  }
}

/** fetch() for the typed client: same origin, the session's token, the 401 rule above. */
export function sessionFetch(input: Request): Promise<Response> {
  return withSession((headers) => {
    const request = input.clone()
    for (const [name, value] of Object.entries(headers)) request.headers.set(name, value)
    return send(request)
  })
}

function expire(): void {
  const wasSignedIn = accessToken !== ''
  endSession()
  if (!wasSignedIn) return
  for (const listener of [...signedOutListeners]) {
    try {
      listener()
    } catch (err) {
      console.error(err)
    }
  }
}

/** POST /v1/auth:login: starts a session (access token here, refresh token as cookie) and
 * returns the signed-in user. Throws ApiError with reason INVALID_LOGIN,
 * USER_PENDING_APPROVAL, USER_REJECTED, USER_DISABLED, TOO_MANY_ATTEMPTS, ... */
export async function login(login: string, password: string): Promise<Record<string, unknown>> {
  await settle(refreshing) // its cookie must not land after ours
  const data = await postJson(LOGIN_URL, { login, password })
  const token = tokenOf(data)
  if (!token) throw new ApiError({ status: 200, message: 'The server sent no access token' })
  startSession(token)
  return (data.user as Record<string, unknown>) || {}
}

/** POST /v1/auth/session:logout. The local session ends at once, whatever the server says;
 * rejects when the server could not be told (the cookie may then still be valid). */
export async function logout(): Promise<void> {
  await settle(refreshing)
  endSession()
  await postJson(LOGOUT_URL, {})
}
