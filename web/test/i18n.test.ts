// Every text exists in both languages; errors become sentences in the current language.
import { describe, expect, test } from 'vitest'
import en from '../src/i18n/en'
import zh from '../src/i18n/zh'
import { browserLocale, errorText, setLocale } from '../src/i18n'
import { ApiError } from '../src/api/errors'

function keys(o: object, prefix = ''): string[] {
  return Object.entries(o).flatMap(([k, v]) => (v && typeof v === 'object' ? keys(v, `${prefix}${k}.`) : [`${prefix}${k}`]))
}
const reasonError = (reason: string, metadata = {}, status = 400, code = 3) =>
  new ApiError({
    status,
    code,
    message: 'server text',
    details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason, metadata }],
  })

describe('i18n', () => {
  test('English and Chinese have exactly the same keys, none empty', () => {
    expect(keys(zh).sort()).toEqual(keys(en).sort())
    for (const k of keys(zh)) expect(k.split('.').reduce((o: any, p) => o[p], zh)).not.toBe('')
  })

  test('the browser language picks Chinese for any zh variant', () => {
    expect(browserLocale(['zh-TW', 'en'])).toBe('zh')
    expect(browserLocale(['en-GB'])).toBe('en')
    expect(browserLocale(['fr', 'zh-CN'])).toBe('zh')
    expect(browserLocale([])).toBe('en')
  })

  test('errors are sentences in the current language, never raw JSON', () => {
    setLocale('en')
    expect(errorText(reasonError('INVALID_LOGIN', {}, 401, 16))).toBe('Wrong username or password.')
    expect(errorText(reasonError('TOO_MANY_ATTEMPTS', { retry_after_s: '90' }, 429, 8))).toBe(
      'Too many failed attempts. Please try again in 2 min.',
    )
    expect(errorText(reasonError('PASSWORD_TOO_SHORT'), { min: 10 })).toBe('The password needs at least 10 characters.')
    expect(errorText(new ApiError({ status: 0, message: 'Failed to fetch' }))).toMatch(/Could not reach ImgTag/)
    expect(errorText(new ApiError({ status: 501, code: 12, message: 'Method not implemented' }))).toBe(
      'This server does not offer that yet.',
    )
    expect(errorText(new ApiError({ status: 502, message: '<html>bad gateway</html>' }))).toBe('The server failed. Please try again.')
    setLocale('zh')
    expect(errorText(reasonError('INVALID_LOGIN', {}, 401, 16))).toBe('用户名或密码错误。')
    expect(errorText(new ApiError({ status: 404, code: 5, message: 'asset not found' }))).toBe('它已不存在。')
    setLocale('en')
  })
})
