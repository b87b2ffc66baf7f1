// Small, dependency-free formatting helpers.

/** int64-as-string (or number) byte count -> "12.1 KB". Empty string when unknown. */
export function formatBytes(value, locale) {
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
  const num = new Intl.NumberFormat(locale, { maximumFractionDigits: digits, minimumFractionDigits: 0 }).format(v)
  return `${num} ${units[i]}`
}

/** "451 × 300", or '' when either side is unknown. */
export function formatDimensions(width, height) {
  const w = Number(width)
  const h = Number(height)
  if (!w || !h) return ''
  return `${w} × ${h}`
}

/** RFC 3339 timestamp -> localized date-time, '' when missing/invalid. */
export function formatTime(value, locale) {
  if (!value) return ''
  const d = new Date(value)
  if (Number.isNaN(d.getTime())) return ''
  return d.toLocaleString(locale, { dateStyle: 'medium', timeStyle: 'short' })
}
