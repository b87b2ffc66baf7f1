// The API's origin: '' when the gateway serves this app (same origin), or the gateway's origin
// when the app is hosted elsewhere (a CDN; that origin must be in the gateway's CORS list): set
// at build time (VITE_IMGTAG_API_ORIGIN) or when uploading the bundle, in index.html's
// <meta name="imgtag-api-origin" content="https://...">, without a rebuild.

interface MetaSource {
  querySelector(selector: string): { getAttribute(name: string): string | null } | null
}

export function apiOrigin(
  doc: MetaSource | undefined = globalThis.document,
  env: Record<string, unknown> | undefined = import.meta.env,
): string {
  const meta = doc?.querySelector?.('meta[name="imgtag-api-origin"]') ?? null
  const value = meta?.getAttribute('content') || env?.VITE_IMGTAG_API_ORIGIN || ''
  return String(value).trim().replace(/\/+$/, '')
}

export const API_ORIGIN = apiOrigin()
// From another origin the refresh cookie must still travel (the gateway's CORS allows credentials).
export const CREDENTIALS: RequestCredentials = API_ORIGIN ? 'include' : 'same-origin'

/** A path on the gateway ("/v1/...", signed content URLs) as a URL this page can fetch. */
export function onGateway(url: string): string {
  return url.startsWith('/') ? API_ORIGIN + url : url
}
