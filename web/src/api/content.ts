// Images are shown through the signed, short-lived URLs each asset carries (<img> cannot send
// the Authorization header). The grid uses the thumbnail and the viewer the preview; only the
// download link uses the original.
import type { V1Asset } from './schema'
import { onGateway } from './origin'

export type Variant = 'thumbnail' | 'preview' | 'original'
const EXPIRY_MARGIN_MS = 60_000

/** The signed URL of `variant`; a missing rendition falls back to the next smaller one that
 * exists, never to the original in the grid or viewer ('' then: the tile shows a placeholder). */
export function contentUrl(asset: V1Asset | undefined, variant: Variant): string {
  const urls = asset?.contentUrls ?? {}
  // Signed URLs are paths on the gateway.
  if (variant === 'original') return onGateway(urls.original || '')
  if (variant === 'preview') return onGateway(urls.preview || urls.thumbnail || '')
  return onGateway(urls.thumbnail || '')
}

/** True when the asset's signed URLs expire within a minute (or there are none). */
export function urlsExpireSoon(asset: V1Asset | undefined, now = Date.now()): boolean {
  const expires = Date.parse(asset?.contentUrls?.expireTime || '')
  return !asset?.contentUrls?.original || (Number.isFinite(expires) && expires - now < EXPIRY_MARGIN_MS)
}

/** Aspect ratio (height / width) from the stored dimensions, clamped so that a panorama or a
 * strip still gets a usable tile; 1 when unknown. */
export function aspect(asset: V1Asset | undefined): number {
  const w = Number(asset?.width) || 0
  const h = Number(asset?.height) || 0
  if (!w || !h) return 1
  return Math.min(3, Math.max(0.25, h / w))
}

/** Whether the asset is still being processed or analysed (a badge shows, and it is polled). */
export function isBusy(asset: V1Asset | undefined): boolean {
  const p = asset?.processingState
  const a = asset?.analysisState
  return p === 'PROCESSING_PENDING' || p === 'PROCESSING_RUNNING' || a === 'PENDING' || a === 'RUNNING'
}
