// The photos the gallery shows for the current view (library, collection, tag, search, trash),
// loaded page by page with keyset page tokens, kept fresh while they are being processed, and
// the selection with the batch actions on it.
import { defineStore } from 'pinia'
import { computed, ref, shallowRef } from 'vue'
import { api, idOf, ok } from '../api/client'
import type { V1Asset, V1AssetSelection, V1BatchAssetsResponse } from '../api/schema'
import { isBusy } from '../api/content'
import { languageTag } from '../i18n'

export type StateFilter = 'any' | 'processing' | 'review' | 'failed'

export interface GalleryQuery {
  trash: boolean
  text: string
  tags: string[]
  collection: string
  from: string // yyyy-mm-dd
  to: string
  state: StateFilter
  similarTo: string
}

export const emptyQuery = (): GalleryQuery => ({
  trash: false,
  text: '',
  tags: [],
  collection: '',
  from: '',
  to: '',
  state: 'any',
  similarTo: '',
})

const PAGE_SIZE = 200
const POLL_MS = 3000

const quote = (s: string) => JSON.stringify(s)

/** The AIP-160 filter for everything but the free text (see the grammar in catalog.proto). */
export function filterFor(q: GalleryQuery): string {
  const parts: string[] = []
  if (q.trash) parts.push('state = TRASHED')
  for (const tag of q.tags) parts.push(`tag = ${quote(tag)}`)
  if (q.collection) parts.push(`collection_tree = ${quote(q.collection)}`)
  if (q.from) parts.push(`capture_time >= ${quote(new Date(q.from + 'T00:00:00').toISOString())}`)
  if (q.to) parts.push(`capture_time < ${quote(new Date(new Date(q.to + 'T00:00:00').getTime() + 86_400_000).toISOString())}`)
  if (q.state === 'processing')
    parts.push('(processing_state = PROCESSING_PENDING OR processing_state = PROCESSING_RUNNING OR analysis_state = PENDING OR analysis_state = RUNNING)')
  if (q.state === 'review') parts.push('has_suggestions = true')
  if (q.state === 'failed') parts.push('(processing_state = PROCESSING_FAILED OR analysis_state = FAILED)')
  return parts.join(' AND ')
}

export const isSearch = (q: GalleryQuery) => Boolean(q.text.trim() || q.similarTo)

export const useGallery = defineStore('gallery', () => {
  const query = ref<GalleryQuery>(emptyQuery())
  // shallowRef: thousands of assets need no deep reactivity; replaced or triggered on change.
  const items = shallowRef<V1Asset[]>([])
  const index = new Map<string, number>()
  const pageToken = ref('')
  const loading = ref(false)
  const finished = ref(false)
  const error = ref<unknown>(null)
  const total = ref<number | null>(null)
  let generation = 0

  // selection
  const selected = ref(new Set<string>())
  const allMatching = ref(false)
  const anchor = ref<number | null>(null)
  // null: everything matching is selected and the server did not say how many that is.
  const selectionCount = computed(() => (allMatching.value ? (total.value || (finished.value ? items.value.length : null)) : selected.value.size))

  function reset(next: GalleryQuery): void {
    generation++
    query.value = next
    items.value = []
    index.clear()
    pageToken.value = ''
    finished.value = false
    error.value = null
    total.value = null
    loading.value = false
    clearSelection()
  }

  // Every change makes a new array: the grid's virtualizer follows the array, not its contents.
  function append(assets: V1Asset[]): void {
    const list = items.value.slice()
    for (const asset of assets) {
      if (!asset.name || index.has(asset.name)) continue
      index.set(asset.name, list.length)
      list.push(asset)
    }
    items.value = list
  }

  /** Loads the next page (no-op while one is loading or when everything is there). */
  async function loadMore(): Promise<void> {
    if (loading.value || finished.value) return
    const mine = generation
    loading.value = true
    error.value = null
    const q = query.value
    try {
      let assets: V1Asset[]
      let next: string
      if (isSearch(q)) {
        const data = await ok(
          api.POST('/v1/assets:search', {
            body: {
              query: q.text.trim(),
              similarTo: q.similarTo,
              filter: filterFor(q),
              pageSize: 100,
              pageToken: pageToken.value,
              language: languageTag(),
            },
          }),
        )
        if (mine !== generation) return
        assets = (data.results ?? []).map((r) => r.asset!).filter(Boolean)
        next = data.nextPageToken ?? ''
      } else {
        const data = await ok(
          api.GET('/v1/assets', {
            params: {
              query: {
                page_size: PAGE_SIZE,
                page_token: pageToken.value || undefined,
                filter: filterFor(q) || undefined,
                show_deleted: q.trash || undefined,
              },
            },
          }),
        )
        if (mine !== generation) return
        assets = data.assets ?? []
        next = data.nextPageToken ?? ''
        // 0 with photos on the page means the server did not count them.
        if (data.totalSize || (!assets.length && !next && !items.value.length)) total.value = data.totalSize ?? 0
      }
      append(assets)
      pageToken.value = next
      finished.value = !next
    } catch (err) {
      if (mine === generation) error.value = err
    } finally {
      if (mine === generation) loading.value = false
    }
  }

  function replace(asset: V1Asset): void {
    const i = asset.name ? index.get(asset.name) : undefined
    if (i === undefined) return
    const list = items.value.slice()
    list[i] = asset
    items.value = list
  }

  function remove(names: string[]): void {
    const gone = new Set(names)
    items.value = items.value.filter((a) => !gone.has(a.name!))
    index.clear()
    items.value.forEach((a, i) => index.set(a.name!, i))
    if (total.value !== null) total.value = Math.max(0, total.value - gone.size)
    for (const n of names) selected.value.delete(n)
  }

  /** New uploads appear at the top of the library (when they match what is shown). */
  function prepend(asset: V1Asset): void {
    const q = query.value
    if (!asset.name || index.has(asset.name) || q.trash || isSearch(q) || q.tags.length || q.collection || q.state !== 'any')
      return
    items.value = [asset, ...items.value]
    index.clear()
    items.value.forEach((a, i) => index.set(a.name!, i))
    if (total.value !== null) total.value++
  }

  // Processing badges follow the server without a reload: busy assets are fetched again, each
  // less often the longer it stays busy (analysis may wait for a model that is not there).
  let timer: ReturnType<typeof setInterval> | null = null
  const backoff = new Map<string, { due: number; wait: number }>()
  async function pollBusy(force = false): Promise<void> {
    const now = Date.now()
    const busy = items.value
      .filter((a) => isBusy(a) && (force || (backoff.get(a.name!)?.due ?? 0) <= now))
      .slice(0, 24)
    await Promise.all(
      busy.map((a) =>
        ok(api.GET('/v1/assets/{asset}', { params: { path: { asset: idOf(a.name!) } } }))
          .then((fresh) => {
            const wait = Math.min(60_000, (backoff.get(a.name!)?.wait ?? POLL_MS / 2) * 2)
            backoff.set(a.name!, { due: Date.now() + wait, wait })
            replace(fresh)
          })
          .catch(() => {}),
      ),
    )
  }
  function startPolling(): void {
    timer ??= setInterval(() => void pollBusy(), POLL_MS)
  }
  function stopPolling(): void {
    if (timer) clearInterval(timer)
    timer = null
  }

  // ---- selection

  function clearSelection(): void {
    selected.value = new Set()
    allMatching.value = false
    anchor.value = null
  }

  /** Click: toggle one; shift-click: select the range from the last clicked one. */
  function clickSelect(i: number, shift: boolean): void {
    allMatching.value = false
    const name = items.value[i]?.name
    if (!name) return
    const next = new Set(selected.value)
    if (shift && anchor.value !== null) {
      const [a, b] = anchor.value < i ? [anchor.value, i] : [i, anchor.value]
      for (let k = a; k <= b; k++) next.add(items.value[k].name!)
    } else if (next.has(name)) next.delete(name)
    else next.add(name)
    anchor.value = i
    selected.value = next
  }

  function setSelection(names: Iterable<string>, add = false): void {
    allMatching.value = false
    selected.value = new Set(add ? [...selected.value, ...names] : names)
  }

  function selectAllLoaded(): void {
    setSelection(items.value.map((a) => a.name!))
  }

  /** Everything the view matches, loaded or not (batch calls then use the filter). */
  function selectAllMatching(): void {
    selectAllLoaded()
    allMatching.value = !isSearch(query.value)
  }

  function selection(): V1AssetSelection {
    if (allMatching.value) return { filter: filterFor(query.value) || 'state = ACTIVE' }
    return { names: { names: [...selected.value] } }
  }

  return {
    query, items, pageToken, loading, finished, error, total,
    selected, allMatching, selectionCount,
    reset, loadMore, replace, remove, prepend, startPolling, stopPolling, pollBusy,
    clearSelection, clickSelect, setSelection, selectAllLoaded, selectAllMatching, selection,
  }
})

export function counts(r: V1BatchAssetsResponse): { ok: number; failed: number } {
  return { ok: Number(r.succeededCount ?? 0), failed: Number(r.failedCount ?? 0) }
}
