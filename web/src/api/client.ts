// The typed REST client: openapi-fetch over the types that openapi-typescript generates from
// public/openapi.json (itself generated from the protos), sending through the session.
import createClient from 'openapi-fetch'
import type { paths } from './schema'
import { ApiError, errorFromBody } from './errors'
import { send, sessionFetch } from './session'
import { languageTag } from '../i18n'
import { API_ORIGIN, CREDENTIALS } from './origin'

export const api = createClient<paths>({
  baseUrl: API_ORIGIN,
  fetch: sessionFetch,
  credentials: CREDENTIALS,
  headers: { Accept: 'application/json' },
})

// Tag names and server messages come in the interface's language.
const language = {
  onRequest({ request }: { request: Request }) {
    request.headers.set('Accept-Language', languageTag())
    return request
  },
}
api.use(language)

/** A client without the session, for the routes anyone may call (register, settings). */
export const publicApi = createClient<paths>({ baseUrl: API_ORIGIN, fetch: send, credentials: CREDENTIALS })
publicApi.use(language)

interface Outcome<T> {
  data?: T
  error?: unknown
  response: Response
}

/** The data of a typed call, or its error as an ApiError. */
export async function ok<T>(call: Promise<Outcome<T>>): Promise<T> {
  let outcome: Outcome<T>
  try {
    outcome = await call
  } catch (err) {
    if (err instanceof ApiError || (err as Error)?.name === 'AbortError') throw err
    throw new ApiError({ status: 0, message: (err as Error)?.message || 'Network error' })
  }
  if (outcome.error !== undefined || !outcome.response.ok) {
    throw errorFromBody(outcome.response.status, outcome.error, outcome.response.statusText)
  }
  return (outcome.data ?? {}) as T
}

/** "assets/<uuid>" -> "<uuid>": the id that fills a path parameter such as {asset}. */
export function idOf(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1)
}
