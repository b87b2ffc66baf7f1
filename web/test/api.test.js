import { test, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { ApiError, apiOrigin, contentUrl, deleteAsset, listAssets, uploadAsset } from '../src/api.js'
import { urlsExpireSoon } from '../src/contentUrls.js'
import { formatBytes, formatDimensions } from '../src/format.js'
import { detectLocale } from '../src/i18n.js'

const realFetch = globalThis.fetch
afterEach(() => {
  globalThis.fetch = realFetch
})

function stubFetch(handler) {
  const calls = []
  globalThis.fetch = async (url, init) => {
    calls.push({ url, init })
    return handler(url, init)
  }
  return calls
}

test('listAssets tolerates a missing assets field and passes the page token', async () => {
  const calls = stubFetch(() => new Response('{}', { status: 200 }))
  const page = await listAssets({ pageSize: 10, pageToken: 'abc' })
  assert.deepEqual(page, { assets: [], nextPageToken: '' })
  assert.equal(calls[0].url, '/v1/assets?page_size=10&page_token=abc')
  assert.equal(calls[0].init.method, 'GET')
})

test('uploadAsset sends raw bytes with filename and content type', async () => {
  const calls = stubFetch(() => Response.json({ name: 'assets/1', filename: '猫 1.jpg' }))
  const file = new File([new Uint8Array([1, 2, 3])], '猫 1.jpg', { type: 'image/jpeg' })
  const asset = await uploadAsset(file)
  assert.equal(asset.name, 'assets/1')
  assert.equal(calls[0].url, '/v1/assets:upload?filename=%E7%8C%AB+1.jpg')
  assert.equal(calls[0].init.method, 'POST')
  assert.equal(calls[0].init.body, file)
  assert.equal(calls[0].init.headers['Content-Type'], 'image/jpeg')
})

test('errors carry HTTP status, gRPC code and the server message', async () => {
  stubFetch(() => Response.json({ code: 3, message: 'not an image', details: [] }, { status: 400 }))
  await assert.rejects(deleteAsset('assets/xyz'), (err) => {
    assert.ok(err instanceof ApiError)
    assert.equal(err.status, 400)
    assert.equal(err.code, 3)
    assert.equal(err.message, 'not an image')
    return true
  })
})

test('non-JSON error bodies and network failures become ApiError', async () => {
  stubFetch(() => new Response('upstream connect error', { status: 503, statusText: 'Service Unavailable' }))
  await assert.rejects(listAssets(), (err) => err instanceof ApiError && err.status === 503 && err.code === null)
  stubFetch(() => {
    throw new TypeError('Failed to fetch')
  })
  await assert.rejects(listAssets(), (err) => err instanceof ApiError && err.status === 0)
})

test('content URLs are the signed ones, renditions falling back to the original', () => {
  const signed = '/v1/assets/0b1c/signedContent?variant=ORIGINAL&expires=1&signature=s'
  const asset = { name: 'assets/0b1c', contentUrls: { original: signed, thumbnail: '', preview: '' } }
  assert.equal(contentUrl(asset), signed)
  assert.equal(contentUrl(asset, 'thumbnail'), signed)
  assert.equal(contentUrl({ ...asset, contentUrls: { original: signed, preview: '/p' } }, 'preview'), '/p')
  assert.equal(contentUrl({ name: 'assets/0b1c' }), '', 'never the header-only /content route')
})

test('signed URLs are renewed shortly before they expire', () => {
  const now = Date.parse('2030-01-01T12:00:00Z')
  const asset = (expireTime) => ({ contentUrls: { original: '/v1/assets/1/signedContent?x', expireTime } })
  assert.equal(urlsExpireSoon(asset('2030-01-01T13:00:00Z'), now), false)
  assert.equal(urlsExpireSoon(asset('2030-01-01T12:00:30Z'), now), true)
  assert.equal(urlsExpireSoon(asset('2030-01-01T11:00:00Z'), now), true)
  assert.equal(urlsExpireSoon({ name: 'assets/1' }, now), true, 'no URL at all')
})

test('formatting helpers', () => {
  assert.equal(formatBytes('12345', 'en'), '12.1 KB')
  assert.equal(formatBytes('512', 'en'), '512 B')
  assert.equal(formatBytes(undefined, 'en'), '')
  assert.equal(formatDimensions(451, 300), '451 × 300')
  assert.equal(formatDimensions(undefined, 300), '')
  assert.equal(detectLocale(['zh-CN', 'en']), 'zh')
  assert.equal(detectLocale(['en-US', 'zh-TW']), 'en')
  assert.equal(detectLocale(['fr']), 'en')
})

test('apiOrigin: same origin by default, else the meta tag, else the build-time setting', () => {
  const page = (content) => ({
    querySelector: (selector) =>
      selector === 'meta[name="imgtag-api-origin"]' && content !== null ? { getAttribute: () => content } : null,
  })
  assert.equal(apiOrigin(page(null), {}), '')
  assert.equal(apiOrigin(page(''), {}), '')
  assert.equal(apiOrigin(undefined, undefined), '')
  assert.equal(apiOrigin(page(''), { VITE_IMGTAG_API_ORIGIN: 'https://api.example' }), 'https://api.example')
  assert.equal(apiOrigin(page('https://edge.example/'), { VITE_IMGTAG_API_ORIGIN: 'https://api.example' }), 'https://edge.example')
})

test('contentUrl keeps same-origin signed paths as they are', () => {
  const asset = { contentUrls: { original: '/v1/assets/a/signedContent?x=1' } }
  assert.equal(contentUrl(asset, 'thumbnail'), '/v1/assets/a/signedContent?x=1')
  assert.equal(contentUrl({ contentUrls: { original: 'https://cdn.example/x' } }), 'https://cdn.example/x')
})
