// The one error type of the API layer: what the gateway answered (a google.rpc.Status as JSON),
// with the google.rpc.ErrorInfo reason that the UI turns into a sentence in the current language.
const ERROR_INFO_TYPE = 'type.googleapis.com/google.rpc.ErrorInfo'

interface Detail {
  '@type'?: string
  reason?: unknown
  metadata?: unknown
  [key: string]: unknown
}

export class ApiError extends Error {
  /** HTTP status; 0 when the request never got a response. */
  readonly status: number
  /** gRPC status code from the body, when present. */
  readonly code: number | null
  readonly details: Detail[]
  /** google.rpc.ErrorInfo reason, e.g. "INVALID_LOGIN"; '' when the server sent none. */
  readonly reason: string
  /** google.rpc.ErrorInfo metadata, e.g. {retry_after_s: "60"}. */
  readonly metadata: Record<string, string>

  constructor(o: { status: number; code?: number | null; message: string; details?: Detail[] }) {
    super(o.message)
    this.name = 'ApiError'
    this.status = o.status
    this.code = o.code ?? null
    this.details = o.details ?? []
    const info = this.details.find((d) => d && d['@type'] === ERROR_INFO_TYPE) ?? {}
    this.reason = typeof info.reason === 'string' ? info.reason : ''
    this.metadata =
      info.metadata && typeof info.metadata === 'object' ? (info.metadata as Record<string, string>) : {}
  }
}

/** An ApiError from a response that is not ok, whatever its body (JSON Status, text, nothing). */
export async function errorFromResponse(res: Response): Promise<ApiError> {
  let text = ''
  try {
    text = await res.text()
  } catch {
    /* body unreadable: fall through to statusText */
  }
  return errorFromBody(res.status, text, res.statusText)
}

export function errorFromBody(status: number, body: unknown, statusText = ''): ApiError {
  let parsed: unknown = body
  if (typeof body === 'string' && body) {
    try {
      parsed = JSON.parse(body)
    } catch {
      /* not JSON (e.g. a plain-text proxy error) */
    }
  }
  if (parsed && typeof parsed === 'object') {
    const o = parsed as { code?: unknown; message?: unknown; details?: unknown }
    return new ApiError({
      status,
      code: typeof o.code === 'number' ? o.code : null,
      message: (typeof o.message === 'string' && o.message) || statusText || `HTTP ${status}`,
      details: Array.isArray(o.details) ? (o.details as Detail[]) : [],
    })
  }
  const text = typeof body === 'string' ? body.trim().slice(0, 300) : ''
  return new ApiError({ status, message: text || statusText || `HTTP ${status}` })
}
