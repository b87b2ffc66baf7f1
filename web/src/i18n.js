// Minimal i18n: English + Simplified Chinese, no library.
import { ref, watchEffect } from 'vue'

const messages = {
  en: {
    appName: 'ImgTag',
    tagline: 'Your photos, organized',
    upload: 'Upload',
    chooseFiles: 'Choose images to upload',
    dropHint: 'Drop images anywhere to upload',
    dropHere: 'Drop images to upload',
    langToggle: '中文',
    langToggleLabel: 'Switch language to Chinese',
    uploadsTitle: 'Uploads',
    uploadSummary: '{done} of {total} finished',
    clearFinished: 'Clear finished',
    stateQueued: 'Queued',
    stateUploading: 'Uploading…',
    stateDone: 'Done',
    stateError: 'Failed',
    notAnImage: 'Not an image file',
    loading: 'Loading…',
    loadMore: 'Load more',
    emptyTitle: 'No images yet',
    emptyBody: 'Click “Upload” or drop photos onto this page to get started.',
    loadFailed: 'Could not load images: {message}',
    retry: 'Retry',
    close: 'Close',
    details: 'Image details',
    filename: 'File name',
    type: 'Type',
    size: 'Size',
    dimensions: 'Dimensions',
    sha256: 'SHA-256',
    created: 'Created',
    openOriginal: 'Open original',
    moveToTrash: 'Move to trash',
    trashing: 'Moving…',
    trashed: 'Moved “{name}” to trash',
    trashFailed: 'Could not move to trash: {message}',
    imageUnavailable: 'Preview unavailable',
    untitled: 'Untitled',
    count: '{n} images',
  },
  zh: {
    appName: 'ImgTag',
    tagline: '让照片井井有条',
    upload: '上传',
    chooseFiles: '选择要上传的图片',
    dropHint: '将图片拖放到页面任意位置即可上传',
    dropHere: '松开鼠标即可上传图片',
    langToggle: 'English',
    langToggleLabel: '切换为英文',
    uploadsTitle: '上传',
    uploadSummary: '已处理 {done} / {total}',
    clearFinished: '清除已完成',
    stateQueued: '等待中',
    stateUploading: '上传中…',
    stateDone: '完成',
    stateError: '失败',
    notAnImage: '不是图片文件',
    loading: '加载中…',
    loadMore: '加载更多',
    emptyTitle: '还没有图片',
    emptyBody: '点击“上传”或将照片拖放到此页面即可开始。',
    loadFailed: '无法加载图片：{message}',
    retry: '重试',
    close: '关闭',
    details: '图片详情',
    filename: '文件名',
    type: '类型',
    size: '大小',
    dimensions: '尺寸',
    sha256: 'SHA-256',
    created: '创建时间',
    openOriginal: '查看原图',
    moveToTrash: '移到回收站',
    trashing: '正在移动…',
    trashed: '已将“{name}”移到回收站',
    trashFailed: '无法移到回收站：{message}',
    imageUnavailable: '无法预览',
    untitled: '未命名',
    count: '{n} 张图片',
  },
}

export const LOCALES = ['en', 'zh']
const STORAGE_KEY = 'imgtag.locale'

export function detectLocale(languages) {
  for (const lang of languages || []) {
    if (typeof lang === 'string' && lang.toLowerCase().startsWith('zh')) return 'zh'
    if (typeof lang === 'string' && lang.toLowerCase().startsWith('en')) return 'en'
  }
  return 'en'
}

function initialLocale() {
  try {
    const saved = localStorage.getItem(STORAGE_KEY)
    if (LOCALES.includes(saved)) return saved
  } catch {
    /* storage unavailable */
  }
  if (typeof navigator === 'undefined') return 'en'
  const langs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language]
  return detectLocale(langs)
}

export const locale = ref(initialLocale())

/** BCP 47 tag for Intl APIs and <html lang>. */
export const intlLocale = () => (locale.value === 'zh' ? 'zh-CN' : 'en')

watchEffect(() => {
  if (typeof document !== 'undefined') document.documentElement.lang = locale.value === 'zh' ? 'zh-CN' : 'en'
})

export function setLocale(value) {
  if (!LOCALES.includes(value)) return
  locale.value = value
  try {
    localStorage.setItem(STORAGE_KEY, value)
  } catch {
    /* storage unavailable */
  }
}

export function toggleLocale() {
  setLocale(locale.value === 'zh' ? 'en' : 'zh')
}

/** Translate `key`, replacing {placeholders} from `params`. Reactive on `locale`. */
export function t(key, params) {
  const table = messages[locale.value] || messages.en
  let s = table[key] ?? messages.en[key] ?? key
  if (params) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in params ? String(params[k]) : m))
  return s
}

export { messages }
