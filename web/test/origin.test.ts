import { describe, expect, test } from 'vitest'
import { apiOrigin, onGateway } from '../src/api/origin'
import { contentUrl } from '../src/api/content'

describe('the API origin', () => {
  const page = (content: string | null) => ({
    querySelector: (selector: string) =>
      selector === 'meta[name="imgtag-api-origin"]' && content !== null ? { getAttribute: () => content } : null,
  })

  test('same origin by default, else the meta tag, else the build-time setting', () => {
    expect(apiOrigin(page(null), {})).toBe('')
    expect(apiOrigin(page(''), {})).toBe('')
    expect(apiOrigin(undefined, undefined)).toBe('')
    expect(apiOrigin(page(''), { VITE_IMGTAG_API_ORIGIN: 'https://api.example' })).toBe('https://api.example')
    expect(apiOrigin(page('https://edge.example/'), { VITE_IMGTAG_API_ORIGIN: 'https://api.example' })).toBe(
      'https://edge.example',
    )
  })

  test('signed content paths stay on this origin when the gateway serves the app', () => {
    expect(onGateway('/v1/assets/a/signedContent?x=1')).toBe('/v1/assets/a/signedContent?x=1')
    expect(onGateway('https://cdn.example/x')).toBe('https://cdn.example/x')
    expect(contentUrl({ contentUrls: { thumbnail: '/v1/assets/a/signedContent?v=t' } }, 'thumbnail')).toBe(
      '/v1/assets/a/signedContent?v=t',
    )
  })
})
