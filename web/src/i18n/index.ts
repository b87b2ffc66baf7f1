// vue-i18n with English and Simplified Chinese: picked from the browser's languages (zh* ->
// Chinese), switchable, the choice remembered; <html lang> follows.
import { createI18n } from 'vue-i18n'
import { watch } from 'vue'
import en from './en'
import zh from './zh'
import { ApiError } from '../api/errors'

export type Locale = 'en' | 'zh'
const STORAGE_KEY = 'imgtag.locale'
const HTML_LANG: Record<Locale, string> = { en: 'en', zh: 'zh-CN' }

export function browserLocale(languages: readonly string[] = globalThis.navigator?.languages ?? []): Locale {
  for (const lang of languages) {
    const l = lang.toLowerCase()
    if (l.startsWith('zh')) return 'zh'
    if (l.startsWith('en')) return 'en'
  }
  return 'en'
}

function initialLocale(): Locale {
  try {
    const saved = localStorage.getItem(STORAGE_KEY)
    if (saved === 'en' || saved === 'zh') return saved
  } catch {
    /* storage unavailable */
  }
  return browserLocale()
}

export const i18n = createI18n({
  legacy: false,
  locale: initialLocale(),
  fallbackLocale: 'en',
  messages: { en, zh },
  // Chinese has no plural forms: zh messages have one form for any count.
  pluralRules: { zh: () => 0 },
})

const locale = i18n.global.locale

export function currentLocale(): Locale {
  return locale.value as Locale
}

/** BCP 47 tag of the current language, for Intl and the server's `language` fields. */
export function languageTag(): string {
  return HTML_LANG[currentLocale()]
}

export function setLocale(next: Locale): void {
  locale.value = next
  try {
    localStorage.setItem(STORAGE_KEY, next)
  } catch {
    /* storage unavailable */
  }
}

export function toggleLocale(): void {
  setLocale(currentLocale() === 'zh' ? 'en' : 'zh')
}

if (typeof document !== 'undefined') {
  watch(locale, (l) => (document.documentElement.lang = HTML_LANG[l as Locale]), { immediate: true })
}

const t = i18n.global.t
const te = i18n.global.te

/** A readable sentence in the current language for any error (never raw JSON); `params` fill
 * the sentence's blanks (e.g. {min} for PASSWORD_TOO_SHORT from the registration settings). */
export function errorText(err: unknown, params: Record<string, unknown> = {}): string {
  if (!(err instanceof ApiError)) {
    const message = err instanceof Error ? err.message : String(err)
    return t('unexpectedError', { message })
  }
  if (err.status === 0) return t('networkError')
  const meta = err.metadata
  if (err.reason === 'TOO_MANY_ATTEMPTS' && Number(meta.retry_after_s) > 0) {
    return t('reasons.TOO_MANY_ATTEMPTS_WAIT', { minutes: Math.max(1, Math.ceil(Number(meta.retry_after_s) / 60)) })
  }
  if (err.reason && te(`reasons.${err.reason}`)) {
    return t(`reasons.${err.reason}`, { min: '', max: '', ...meta, ...params })
  }
  if (err.code !== null && te(`grpc.${err.code}`)) {
    // The server's own message adds what the sentence cannot know (which field, which limit).
    const general = t(`grpc.${err.code}`)
    return err.code === 3 || err.code === 9 ? `${general} ${err.message}` : general
  }
  if (err.status >= 500) return t('grpc.13')
  return t('unexpectedError', { message: err.message })
}
