// The upload queue: files, folders and ZIP archives, a few at a time, each with its progress
// and its result (created; duplicate, with the existing photo; rejected, with the reason).
import { defineStore } from 'pinia'
import { computed, reactive, ref } from 'vue'
import { ApiError } from '../api/errors'
import { api, idOf, ok } from '../api/client'
import { importZip, uploadAsset, type ImportJob } from '../api/upload'
import { useGallery } from './gallery'

export type UploadState = 'queued' | 'uploading' | 'importing' | 'created' | 'duplicate' | 'rejected' | 'cancelled'

export interface UploadItem {
  id: number
  file: File
  path: string // relative path for files from a folder
  zip: boolean
  state: UploadState
  sent: number
  error: unknown // ApiError or a local reason key
  asset: string // created or existing asset name
  job: ImportJob | null
  controller: AbortController
}

const CONCURRENCY = 3
const IMAGE_EXT = /\.(jpe?g|png|gif|webp|avif|heic|heif|tiff?|bmp)$/i
const FINAL: UploadState[] = ['created', 'duplicate', 'rejected', 'cancelled']

export function isZip(file: File): boolean {
  return /\.zip$/i.test(file.name) || file.type === 'application/zip' || file.type === 'application/x-zip-compressed'
}

export function looksLikeImage(file: File): boolean {
  return file.type.startsWith('image/') || IMAGE_EXT.test(file.name)
}

export const useUploads = defineStore('uploads', () => {
  const items = ref<UploadItem[]>([])
  let nextId = 1
  let running = 0

  const total = computed(() => items.value.length)
  const finishedCount = computed(() => items.value.filter((i) => FINAL.includes(i.state)).length)
  const bytesTotal = computed(() => items.value.reduce((s, i) => s + i.file.size, 0))
  const bytesSent = computed(() =>
    items.value.reduce((s, i) => s + (FINAL.includes(i.state) || i.state === 'importing' ? i.file.size : i.sent), 0),
  )
  const active = computed(() => items.value.some((i) => !FINAL.includes(i.state)))

  function add(files: { file: File; path?: string }[]): void {
    for (const { file, path } of files) {
      const zip = isZip(file)
      const item = reactive<UploadItem>({
        id: nextId++,
        file,
        path: path || file.name,
        zip,
        state: 'queued',
        sent: 0,
        error: null,
        asset: '',
        job: null,
        controller: new AbortController(),
      }) as UploadItem
      if (!zip && !looksLikeImage(file)) {
        item.state = 'rejected'
        item.error = 'notAnImage'
      }
      items.value.push(item)
    }
    pump()
  }

  function pump(): void {
    while (running < CONCURRENCY) {
      const item = items.value.find((i) => i.state === 'queued')
      if (!item) return
      running++
      item.state = 'uploading'
      void (item.zip ? runZip(item) : runImage(item)).finally(() => {
        running--
        pump()
      })
    }
  }

  async function runImage(item: UploadItem): Promise<void> {
    try {
      const asset = await uploadAsset(
        item.file,
        { filename: item.file.name },
        { signal: item.controller.signal, onProgress: (sent) => (item.sent = sent) },
      )
      item.state = 'created'
      item.asset = asset.name ?? ''
      useGallery().prepend(asset)
    } catch (err) {
      settleFailure(item, err)
    }
  }

  async function runZip(item: UploadItem): Promise<void> {
    try {
      let job = await importZip(
        item.file,
        { filename: item.file.name },
        { signal: item.controller.signal, onProgress: (sent) => (item.sent = sent) },
      )
      item.job = job
      item.state = 'importing'
      while (job.state === 'PENDING' || job.state === 'RUNNING') {
        await new Promise((r) => setTimeout(r, 1000))
        if (item.controller.signal.aborted) {
          job = await ok(api.POST('/v1/importJobs/{importJob}:cancel', { params: { path: { importJob: idOf(job.name!) } }, body: { name: job.name! } }))
          break
        }
        job = await ok(api.GET('/v1/importJobs/{importJob}', { params: { path: { importJob: idOf(job.name!) } } }))
        item.job = job
      }
      item.job = job
      item.state = job.state === 'CANCELLED' ? 'cancelled' : job.state === 'FAILED' ? 'rejected' : 'created'
      if (job.state === 'FAILED') item.error = new ApiError({ status: 400, message: job.error?.message ?? '', code: job.error?.code ?? 3 })
      useGallery().reset({ ...useGallery().query })
      void useGallery().loadMore()
    } catch (err) {
      settleFailure(item, err)
    }
  }

  function settleFailure(item: UploadItem, err: unknown): void {
    if ((err as Error)?.name === 'AbortError') {
      item.state = 'cancelled'
    } else if (err instanceof ApiError && err.reason === 'DUPLICATE_ASSET') {
      item.state = 'duplicate'
      item.asset = err.metadata.asset ?? ''
    } else {
      item.state = 'rejected'
      item.error = err
    }
  }

  /** Cancels what has not finished: queued files never start, running ones are aborted. */
  function cancelAll(): void {
    for (const item of items.value) {
      if (item.state === 'queued') item.state = 'cancelled'
      else if (item.state === 'uploading' || item.state === 'importing') item.controller.abort()
    }
  }

  function cancel(item: UploadItem): void {
    if (item.state === 'queued') item.state = 'cancelled'
    else item.controller.abort()
  }

  function clearFinished(): void {
    items.value = items.value.filter((i) => !FINAL.includes(i.state))
  }

  return { items, total, finishedCount, bytesTotal, bytesSent, active, add, cancel, cancelAll, clearFinished }
})

/** Every file under the dropped entries (folders walked recursively), with relative paths. */
export async function filesFromDrop(dt: DataTransfer): Promise<{ file: File; path: string }[]> {
  const entries = [...dt.items]
    .filter((i) => i.kind === 'file')
    .map((i) => i.webkitGetAsEntry?.())
    .filter((e): e is FileSystemEntry => Boolean(e))
  if (!entries.length) return [...dt.files].map((file) => ({ file, path: file.name }))
  const out: { file: File; path: string }[] = []
  const walk = async (entry: FileSystemEntry, prefix: string): Promise<void> => {
    if (entry.isFile) {
      const file = await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej))
      out.push({ file, path: prefix + file.name })
    } else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader()
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej))
        if (!batch.length) break
        for (const child of batch) await walk(child, `${prefix}${entry.name}/`)
      }
    }
  }
  for (const entry of entries) await walk(entry, '')
  return out
}
