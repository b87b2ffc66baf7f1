// All calls to the ImgTag REST API (Envoy gRPC-JSON transcoder, same origin).
// JSON field names are lowerCamelCase; int64 fields arrive as strings; fields
// holding default values (including empty lists) may be missing entirely.

const API_ROOT = '/v1'

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
  return urls[variant] || urls.original || ''
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

async function request(method, url, { body, headers, signal } = {}) {
  let res
  try {
    res = await fetch(url, {
      method,
      body,
      signal,
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

/**
 * GET /v1/assets
 * @returns {Promise<{assets: object[], nextPageToken: string}>}
 */
export async function listAssets({ pageSize = 50, pageToken = '', signal } = {}) {
  const q = new URLSearchParams({ page_size: String(pageSize) })
  if (pageToken) q.set('page_token', pageToken)
  const data = await request('GET', `${API_ROOT}/assets?${q}`, { signal })
  return {
    assets: Array.isArray(data.assets) ? data.assets : [],
    nextPageToken: data.nextPageToken || '',
  }
}

/** GET /v1/assets/<uuid>: the asset, with fresh signed content URLs. */
export function getAsset(name, { signal } = {}) {
  return request('GET', resourcePath(name), { signal })
}

/**
 * POST /v1/assets:upload?filename=... with the raw bytes as the body.
 * @param {File} file
 * @returns {Promise<object>} the created (or existing) Asset
 */
export function uploadAsset(file, { signal } = {}) {
  const q = new URLSearchParams({ filename: file.name })
  return request('POST', `${API_ROOT}/assets:upload?${q}`, {
    body: file,
    signal,
    headers: { 'Content-Type': file.type || 'application/octet-stream' },
  })
}

/** DELETE /v1/assets/<uuid> (moves the asset to the trash). */
export function deleteAsset(name, { signal } = {}) {
  return request('DELETE', resourcePath(name), { signal })
}
