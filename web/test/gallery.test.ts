// What the gallery asks the server for, and what it shows: filters from the view, thumbnails
// (never originals) in the grid, tile heights from stored dimensions.
import { describe, expect, test } from 'vitest'
import { aspect, contentUrl, isBusy } from '../src/api/content'
import { emptyQuery, filterFor, isSearch } from '../src/stores/gallery'
import { isZip, looksLikeImage } from '../src/stores/uploads'

const signed = { original: '/o', thumbnail: '/t', preview: '/p', expireTime: '2999-01-01T00:00:00Z' }

describe('gallery', () => {
  test('the grid and the viewer never fall back to the original', () => {
    expect(contentUrl({ contentUrls: signed }, 'thumbnail')).toBe('/t')
    expect(contentUrl({ contentUrls: signed }, 'preview')).toBe('/p')
    expect(contentUrl({ contentUrls: { original: '/o' } }, 'thumbnail')).toBe('')
    expect(contentUrl({ contentUrls: { original: '/o', thumbnail: '/t' } }, 'preview')).toBe('/t')
    expect(contentUrl({ contentUrls: signed }, 'original')).toBe('/o')
  })

  test('tile heights come from stored width and height, clamped', () => {
    expect(aspect({ width: 400, height: 300 })).toBe(0.75)
    expect(aspect({ width: 100, height: 1000 })).toBe(3)
    expect(aspect({})).toBe(1)
  })

  test('busy assets are polled until processed and analysed', () => {
    expect(isBusy({ processingState: 'PROCESSING_PENDING' })).toBe(true)
    expect(isBusy({ processingState: 'PROCESSING_COMPLETED', analysisState: 'RUNNING' })).toBe(true)
    expect(isBusy({ processingState: 'PROCESSING_COMPLETED', analysisState: 'SUCCEEDED' })).toBe(false)
  })

  test('the view becomes the filter grammar of the API', () => {
    expect(filterFor(emptyQuery())).toBe('')
    expect(filterFor({ ...emptyQuery(), trash: true })).toBe('state = TRASHED')
    const q = { ...emptyQuery(), tags: ['tags/1', 'tags/2'], collection: 'collections/c', state: 'review' as const }
    expect(filterFor(q)).toBe('tag = "tags/1" AND tag = "tags/2" AND collection_tree = "collections/c" AND has_suggestions = true')
    const dated = filterFor({ ...emptyQuery(), from: '2024-05-01', to: '2024-05-31' })
    expect(dated).toMatch(/^capture_time >= "2024-0[45]-\d\dT.*Z" AND capture_time < "2024-06-0[01]T.*Z"$/)
    expect(isSearch({ ...emptyQuery(), text: ' cat ' })).toBe(true)
    expect(isSearch({ ...emptyQuery(), tags: ['tags/1'] })).toBe(false)
  })

  test('uploads tell ZIP archives and images apart', () => {
    expect(isZip(new File([], 'photos.ZIP'))).toBe(true)
    expect(looksLikeImage(new File([], 'IMG_1.HEIC'))).toBe(true)
    expect(looksLikeImage(new File([], 'notes.txt', { type: 'text/plain' }))).toBe(false)
  })
})
