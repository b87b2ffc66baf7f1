// All calls to the ImgTag REST API (Envoy gRPC-JSON transcoder, same origin).
// JSON field names are lowerCamelCase; int64 fields arrive as strings; fields
// holding default values (including empty lists) may be missing entirely.
//
// Session rule: the access token lives in this module's memory only (never in storage a
// script could read later); the refresh token is an HttpOnly cookie scoped to /v1/auth/ that
// only the browser sends. An API call answered 401 triggers one refresh shared by every
// caller (refresh tokens rotate, and presenting a used one ends the session), then is
// retried once; when the session cannot be refreshed, onSignedOut listeners are told.

// The API's origin: '' when the gateway serves this app (same origin), or the gateway's origin
// when the app is hosted elsewhere (a CDN; that origin must be in the gateway's CORS list): set
// at build time (VITE_IMGTAG_API_ORIGIN) or when uploading the bundle, in index.html's
// <meta name="imgtag-api-origin" content="https://...">, without a rebuild.
export function apiOrigin(doc = globalThis.document, env = import.meta.env) {
  const meta = doc && doc.querySelector ? doc.querySelector('meta[name="imgtag-api-origin"]') : null
  const value = (meta && meta.getAttribute('content')) || (env && env.VITE_IMGTAG_API_ORIGIN) || ''
  return String(value).trim().replace(/\/+$/, '')
}

const API_ORIGIN = apiOrigin()
const API_ROOT = `${API_ORIGIN}/v1`
const LOGIN_URL = `${API_ROOT}/auth:login`
const REFRESH_URL = `${API_ROOT}/auth/session:refresh`
const LOGOUT_URL = `${API_ROOT}/auth/session:logout`
const ERROR_INFO_TYPE = 'type.googleapis.com/google.rpc.ErrorInfo'

/** The single error type thrown by this module. */
export class ApiError extends Error {
  /**
   * @param {object} o
   * @param {number} o.status  HTTP status (0 when the request never got a response)
   * @param {number|null} o.code  gRPC status code from the body, when present
   * @param {string} o.message  human readable message (the server's when available)
   * @param {Array} [o.details] gRPC error details, when present
   */
  constructor({ status, code = null, message, details = [] }) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.details = details
    const info = details.find((d) => d && d['@type'] === ERROR_INFO_TYPE) || {}
    /** google.rpc.ErrorInfo reason, e.g. "INVALID_LOGIN"; '' when the server sent none. */
    this.reason = typeof info.reason === 'string' ? info.reason : ''
    /** google.rpc.ErrorInfo metadata, e.g. {retry_after_s: "60"}. */
    this.metadata = info.metadata && typeof info.metadata === 'object' ? info.metadata : {}
  }
}

/** "assets/<uuid>" -> "/v1/assets/<uuid>" (each segment URL-encoded). */
export function resourcePath(name) {
  return API_ROOT + '/' + String(name).split('/').map(encodeURIComponent).join('/')
}

/**
 * URL for <img src> and links: the asset's signed, short-lived URL (no header needed), the
 * rendition asked for when it exists, else the original. '' when the asset carries none.
 * @param {object} asset
 * @param {'thumbnail'|'preview'|'original'} [variant]
 */
export function contentUrl(asset, variant = 'original') {
  const urls = (asset && asset.contentUrls) || {}
  const url = urls[variant] || urls.original || ''
  // Signed URLs are paths on the gateway.
  return url.startsWith('/') ? API_ORIGIN + url : url
}

async function errorFromResponse(res) {
  let text = ''
  try {
    text = await res.text()
  } catch {
    /* body unreadable: fall through to statusText */
  }
  let body = null
  if (text) {
    try {
      body = JSON.parse(text)
    } catch {
      /* not JSON (e.g. a plain-text gateway error) */
    }
  }
  if (body && typeof body === 'object') {
    return new ApiError({
      status: res.status,
      code: typeof body.code === 'number' ? body.code : null,
      message: body.message || res.statusText || `HTTP ${res.status}`,
      details: Array.isArray(body.details) ? body.details : [],
    })
  }
  return new ApiError({
    status: res.status,
    message: (text && text.trim().slice(0, 300)) || res.statusText || `HTTP ${res.status}`,
  })
}

/** One HTTP exchange, no session handling. */
async function request(method, url, { body, headers, signal } = {}) {
  let res
  try {
    res = await fetch(url, {
      method,
      body,
      signal,
      // From another origin the refresh cookie must still travel (CORS allows credentials).
      credentials: API_ORIGIN ? 'include' : 'same-origin',
      headers: { Accept: 'application/json', ...headers },
    })
  } catch (err) {
    if (err && err.name === 'AbortError') throw err
    throw new ApiError({ status: 0, message: (err && err.message) || 'Network error' })
  }
  if (!res.ok) throw await errorFromResponse(res)
  if (res.status === 204) return {}
  const text = await res.text()
  if (!text) return {}
  try {
    return JSON.parse(text)
  } catch {
    throw new ApiError({ status: res.status, message: 'Invalid JSON in response' })
  }
}

const json = (value) => ({ body: JSON.stringify(value), headers: { 'Content-Type': 'application/json' } })

// ---- session --------------------------------------------------------------------------

let accessToken = ''
// Bumped whenever a session starts or ends, so that answers to requests sent before (a late
// refresh, a late 401) cannot revive or end the session that replaced theirs.
let epoch = 0
let refreshing = null
const signedOutListeners = new Set()

/**
 * Calls `listener()` whenever the session ends without the user asking (it could not be
 * refreshed). Returns a function that removes the listener.
 */
export function onSignedOut(listener) {
  signedOutListeners.add(listener)
  return () => signedOutListeners.delete(listener)
}

function startSession(token) {
  accessToken = token
  epoch++
}

function endSession() {
  accessToken = ''
  epoch++
}

/** Whether an access token is held (the server still decides whether it is valid). */
export function isSignedIn() {
  return accessToken !== ''
}

// Other tabs share the refresh cookie: where the browser offers Web Locks (secure contexts),
// their refreshes take turns, so no two ever present the same refresh token.
function inRefreshLock(task) {
  const locks = globalThis.navigator && globalThis.navigator.locks
  return locks && typeof locks.request === 'function' ? locks.request('imgtag.session.refresh', task) : task()
}

/**
 * Exchanges the refresh cookie for a new access token, single-flight: concurrent callers
 * share one request. Resolves true when a token was obtained, false when the server refused
 * (no session); rejects on network or server failures (the session may still be fine).
 */
function refreshSession() {
  if (!refreshing) {
    const started = epoch
    refreshing = inRefreshLock(() => request('POST', REFRESH_URL, json({})))
      .then(
        (data) => {
          const token = (data && data.tokens && data.tokens.accessToken) || ''
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

const settle = (promise) => (promise ? promise.catch(() => {}) : Promise.resolve())

/** An API request with the access token; on 401 refreshes once (shared) and retries once. */
async function apiRequest(method, url, options = {}) {
  if (refreshing) await settle(refreshing) // don't send a token that is being replaced
  let retried = false
  for (;;) {
    const sentEpoch = epoch
    const sentToken = accessToken
    const headers = sentToken ? { ...options.headers, Authorization: `Bearer ${sentToken}` } : options.headers
    try {
      return await request(method, url, { ...options, headers })
    } catch (err) {
      // Not an expired token, or the session was ended on purpose while this was in flight.
      if (!(err instanceof ApiError) || err.status !== 401 || (sentEpoch !== epoch && !accessToken)) throw err
      if (retried) {
        // A freshly refreshed token was refused too: the session is unusable.
        if (accessToken === sentToken) expire()
        throw err
      }
      retried = true
      // Someone else may already have refreshed since this request went out.
      if (accessToken === sentToken && !(await refreshSession())) {
        expire()
        throw err
      }
    }
  }
}

function expire() {
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

/**
 * POST /v1/auth:login. Starts a session (access token here, refresh token as cookie).
 * @param {string} login  username or email
 * @param {string} password
 * @returns {Promise<object>} the signed-in User
 * @throws {ApiError} reason INVALID_LOGIN, USER_PENDING_APPROVAL, USER_REJECTED,
 *   USER_DISABLED, TOO_MANY_ATTEMPTS, ...
 */
export async function login(login, password) {
  await settle(refreshing) // its cookie must not land after ours
  const data = await request('POST', LOGIN_URL, json({ login, password }))
  const token = data && data.tokens && data.tokens.accessToken
  if (!token) throw new ApiError({ status: 200, message: 'The server sent no access token' })
  startSession(token)
  return data.user || {}
}

/**
 * Resumes the session from the refresh cookie (app start, reload). Resolves the current
 * User, or null when there is no session; rejects when the server cannot be reached.
 */
export async function restoreSession() {
  if (!(await refreshSession())) return null
  return getCurrentUser()
}

/**
 * POST /v1/auth/session:logout. The local session ends at once, whatever the server says;
 * rejects when the server could not be told (the cookie may then still be valid).
 */
export async function logout() {
  await settle(refreshing)
  endSession()
  await request('POST', LOGOUT_URL, json({}))
}

/**
 * POST /v1/users:register.
 * @param {{username: string, email: string, password: string, displayName?: string}} account
 * @returns {Promise<object>} the new User; state "PENDING" (awaits approval) or "ACTIVE"
 * @throws {ApiError} reasons INVALID_USERNAME, INVALID_EMAIL, PASSWORD_TOO_SHORT,
 *   USERNAME_TAKEN, EMAIL_TAKEN, REGISTRATION_CLOSED, ...
 */
export function register({ username, email, password, displayName = '' }) {
  const body = { username, email, password }
  if (displayName) body.displayName = displayName
  return request('POST', `${API_ROOT}/users:register`, json(body))
}

/**
 * GET /v1/registrationSettings (public).
 * @returns {Promise<{mode: string, minPasswordLength: number, maxPasswordLength: number}>}
 */
export async function getRegistrationSettings() {
  const data = await request('GET', `${API_ROOT}/registrationSettings`)
  return {
    mode: data.mode || 'MODE_UNSPECIFIED',
    minPasswordLength: Number(data.minPasswordLength) || 0,
    maxPasswordLength: Number(data.maxPasswordLength) || 0,
  }
}

/** GET /v1/users/me: the signed-in User. */
export function getCurrentUser({ signal } = {}) {
  return apiRequest('GET', `${API_ROOT}/users/me`, { signal })
}

// ---- assets ---------------------------------------------------------------------------

/**
 * GET /v1/assets
 * @returns {Promise<{assets: object[], nextPageToken: string}>}
 */
export async function listAssets({ pageSize = 50, pageToken = '', signal } = {}) {
  const q = new URLSearchParams({ page_size: String(pageSize) })
  if (pageToken) q.set('page_token', pageToken)
  const data = await apiRequest('GET', `${API_ROOT}/assets?${q}`, { signal })
  return {
    assets: Array.isArray(data.assets) ? data.assets : [],
    nextPageToken: data.nextPageToken || '',
  }
}

/** GET /v1/assets/<uuid>: the asset, with fresh signed content URLs. */
export function getAsset(name, { signal } = {}) {
  return apiRequest('GET', resourcePath(name), { signal })
}

/**
 * POST /v1/assets:upload?filename=... with the raw bytes as the body.
 * @param {File} file
 * @returns {Promise<object>} the created (or existing) Asset
 */
export function uploadAsset(file, { signal } = {}) {
  const q = new URLSearchParams({ filename: file.name })
  return apiRequest('POST', `${API_ROOT}/assets:upload?${q}`, {
    body: file,
    signal,
    headers: { 'Content-Type': file.type || 'application/octet-stream' },
  })
}

/** DELETE /v1/assets/<uuid> (moves the asset to the trash). */
export function deleteAsset(name, { signal } = {}) {
  return apiRequest('DELETE', resourcePath(name), { signal })
}
