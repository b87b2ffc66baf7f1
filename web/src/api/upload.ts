// Raw-bytes uploads (UploadAsset, ImportZip) with progress: fetch() cannot report upload
// progress, so these go through XMLHttpRequest, with the same session rule as every call.
import type { paths } from './schema'
import { ApiError, errorFromBody } from './errors'
import { onGateway } from './origin'
import { withSession } from './session'

type UploadQuery = NonNullable<paths['/v1/assets:upload']['post']['parameters']['query']>
type ZipQuery = NonNullable<paths['/v1/importJobs:zip']['post']['parameters']['query']>
export type UploadedAsset = paths['/v1/assets:upload']['post']['responses']['200']['content']['application/json']
export type ImportJob = paths['/v1/importJobs:zip']['post']['responses']['200']['content']['application/json']

export interface SendOptions {
  onProgress?: (sent: number, total: number) => void
  signal?: AbortSignal
}

function query(params: Record<string, unknown>): string {
  const q = new URLSearchParams()
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === '' || value === false) continue
    for (const one of Array.isArray(value) ? value : [value]) q.append(key, String(one))
  }
  return q.toString()
}

/** One XMLHttpRequest as a Response (network failures: ApiError status 0; aborts: AbortError). */
function xhrSend(url: string, body: Blob, headers: Record<string, string>, o: SendOptions): Promise<Response> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest()
    xhr.open('POST', url)
    xhr.withCredentials = true
    xhr.setRequestHeader('Accept', 'application/json')
    xhr.setRequestHeader('Content-Type', body.type || 'application/octet-stream')
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value)
    xhr.upload.onprogress = (e) => o.onProgress?.(e.loaded, e.lengthComputable ? e.total : body.size)
    xhr.onload = () =>
      resolve(new Response(xhr.status === 204 ? null : xhr.responseText, { status: xhr.status, statusText: xhr.statusText }))
    xhr.onerror = () => reject(new ApiError({ status: 0, message: 'Network error' }))
    xhr.onabort = () => reject(new DOMException('The upload was cancelled', 'AbortError'))
    if (o.signal) {
      if (o.signal.aborted) return xhr.abort()
      o.signal.addEventListener('abort', () => xhr.abort(), { once: true })
    }
    xhr.send(body)
  })
}

async function postBytes<T>(path: string, params: Record<string, unknown>, body: Blob, o: SendOptions): Promise<T> {
  const url = `${onGateway(path)}?${query(params)}`
  const res = await withSession((headers) => xhrSend(url, body, headers, o))
  const text = await res.text()
  if (!res.ok) throw errorFromBody(res.status, text, res.statusText)
  return (text ? JSON.parse(text) : {}) as T
}

/** POST /v1/assets:upload: one image. Fails with reason DUPLICATE_ASSET (metadata.asset names
 * the existing one) or INVALID_ARGUMENT for bytes that are not an image. */
export function uploadAsset(file: Blob, params: UploadQuery, o: SendOptions = {}): Promise<UploadedAsset> {
  return postBytes('/v1/assets:upload', params, file, o)
}

/** POST /v1/importJobs:zip: a ZIP archive, imported by a job (poll GetImportJob). */
export function importZip(file: Blob, params: ZipQuery, o: SendOptions = {}): Promise<ImportJob> {
  return postBytes('/v1/importJobs:zip', params, file, o)
}
