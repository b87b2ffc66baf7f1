// Small formatting helpers (numbers and dates in the interface's language).
import type { V1CameraInfo } from '../api/schema'

/** int64-as-string (or number) byte count -> "12.1 KB"; '' when unknown. */
export function formatBytes(value: string | number | undefined, locale?: string): string {
  if (value === undefined || value === null || value === '') return ''
  const n = Number(value)
  if (!Number.isFinite(n) || n < 0) return ''
  const units = ['B', 'KB', 'MB', 'GB', 'TB']
  let i = 0
  let v = n
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  const digits = i === 0 || v >= 100 ? 0 : 1
  return `${new Intl.NumberFormat(locale, { maximumFractionDigits: digits }).format(v)} ${units[i]}`
}

/** "451 × 300", or '' when either side is unknown. */
export function formatDimensions(width?: number, height?: number): string {
  return width && height ? `${width} × ${height}` : ''
}

/** RFC 3339 timestamp -> localized date and time; '' when missing or invalid. */
export function formatTime(value: string | undefined, locale?: string): string {
  if (!value) return ''
  const d = new Date(value)
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleString(locale, { dateStyle: 'medium', timeStyle: 'short' })
}

/** "1/250 s · f/2.8 · ISO 100 · 35 mm" from what the camera recorded; '' when nothing. */
export function formatExposure(c: V1CameraInfo): string {
  const parts: string[] = []
  const s = c.exposureTimeSeconds
  if (s) parts.push(s >= 1 ? `${s} s` : `1/${Math.round(1 / s)} s`)
  if (c.fNumber) parts.push(`f/${c.fNumber}`)
  if (c.iso) parts.push(`ISO ${c.iso}`)
  if (c.focalLengthMm) parts.push(`${c.focalLengthMm} mm`)
  return parts.join(' · ')
}
