import { test, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { ApiError } from '../src/api.js'
import { errorText, messages, setLocale } from '../src/i18n.js'

afterEach(() => setLocale('en'))

const refused = (reason, metadata = {}) =>
  new ApiError({
    status: 403,
    code: 7,
    message: 'server words',
    details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason, metadata }],
  })

test('every English text has a Chinese translation and no other keys exist', () => {
  assert.deepEqual(Object.keys(messages.zh).sort(), Object.keys(messages.en).sort())
  for (const [key, text] of Object.entries(messages.zh)) assert.ok(text.trim(), `zh.${key} is empty`)
})

test('error reasons read as sentences in the current language', () => {
  assert.equal(errorText(refused('INVALID_LOGIN')), 'Wrong username or password.')
  assert.match(errorText(refused('USER_PENDING_APPROVAL')), /waiting for an administrator’s approval/)
  assert.equal(errorText(refused('PASSWORD_TOO_SHORT'), { min: 10 }), 'The password needs at least 10 characters.')
  assert.equal(errorText(refused('TOO_MANY_ATTEMPTS', { retry_after_s: '61' })), 'Too many failed attempts. Please try again in 2 min.')
  setLocale('zh')
  assert.equal(errorText(refused('INVALID_LOGIN')), '用户名或密码错误。')
  assert.equal(errorText(refused('USER_PENDING_APPROVAL')), '您的账号正在等待管理员审核。审核通过后即可登录。')
  assert.equal(errorText(refused('PASSWORD_TOO_SHORT'), { min: 10 }), '密码至少需要 10 个字符。')
})

test('errors without a known reason: network failures and the server message', () => {
  assert.equal(errorText(new ApiError({ status: 0, message: 'Failed to fetch' })), 'Could not reach ImgTag. Check your connection and try again.')
  assert.equal(errorText(refused('SOMETHING_NEW')), 'Something went wrong: server words')
  setLocale('zh')
  assert.equal(errorText(new ApiError({ status: 0, message: 'Failed to fetch' })), '无法连接到 ImgTag，请检查网络后重试。')
})
